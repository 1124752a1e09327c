"""The `format_submission` stage: the predictions as a zip in the layout the official servers expect.

- DAVIS (CodaLab): one folder per sequence at the zip root (a single top-level folder is rejected),
  every sequence of the set present, every frame of each sequence.
- YouTube-VOS: `Annotations/<video>/<frame>.png` for exactly the frames that the meta.json lists
  (the union of its objects' frames).

Everything is validated before anything is written, and the zip is deterministic: sorted entries,
fixed timestamps and permissions, so the same predictions always give the same bytes (and the same
DVC hash).
"""

import io
import json
import logging
import zipfile
from pathlib import Path

from tqdm import tqdm

from rvos import paths
from rvos.atomic import write_bytes_atomic
from rvos.config import Config
from rvos.data.dataset import LmdbVideos
from rvos.data.split import dataset_layout, read_list
from rvos.errors import RvosError
from rvos.masks import read_mask
from rvos.tracking import StageRun

log = logging.getLogger(__name__)

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold


def check_prediction(path: Path, size: tuple[int, int] | None) -> None:
    """A prediction must exist, be an id PNG (palette or grayscale) and have the video's size."""
    if not path.is_file():
        raise RvosError(f"{path}: prediction is missing")
    mask = read_mask(path)
    if size is not None and mask.shape != tuple(size):
        raise RvosError(
            f"{path}: prediction is {mask.shape[0]}x{mask.shape[1]}, the video is {size[0]}x{size[1]}"
        )


def davis_entries(
    results: Path, videos: dict[str, list[str]], sizes: dict | None = None
) -> list[tuple[str, Path]]:
    """(zip name, file) for every frame of every sequence; errors name the first problem."""
    entries = []
    for name in sorted(videos):
        for stem in videos[name]:
            path = results / name / f"{stem}.png"
            check_prediction(path, sizes.get(name) if sizes else None)
            entries.append((f"{name}/{stem}.png", path))
    return entries


def youtube_entries(results: Path, meta: dict) -> list[tuple[str, Path]]:
    """(zip name, file) for exactly the frames listed in a YouTube-VOS meta.json."""
    entries = []
    for video, info in sorted(meta["videos"].items()):
        frames = sorted({f for obj in info["objects"].values() for f in obj["frames"]})
        for frame in frames:
            path = results / video / f"{frame}.png"
            check_prediction(path, None)
            entries.append((f"Annotations/{video}/{frame}.png", path))
    return entries


def deterministic_zip(entries: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in tqdm(sorted(entries), desc="zip", unit="file"):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def format_submission_stage(config: Config, run: StageRun) -> None:
    """Zip outputs/predictions into outputs/submission.zip in the official server layout."""
    if dataset_layout(config.data.source) == "youtube":
        meta_path = paths.SPLITS / "train-val-meta.json"
        entries = youtube_entries(paths.PREDICTIONS, json.loads(meta_path.read_text()))
    else:
        videos = LmdbVideos(paths.LMDB)
        names = read_list(paths.SPLITS / "test.txt")
        frames = {name: list(videos.videos[name].frames) for name in names}
        sizes = {name: videos.videos[name].size for name in names}
        entries = davis_entries(paths.PREDICTIONS, frames, sizes)
    data = deterministic_zip(entries)
    write_bytes_atomic(paths.SUBMISSION, data)
    log.info("wrote %s: %d masks, %.1f MB", paths.SUBMISSION, len(entries), len(data) / 2**20)
    run.log_metrics({"submission_files": len(entries)})
