"""Submission archives: the predictions as a zip in the layout the official servers expect.

- DAVIS (CodaLab): one folder per sequence at the zip root (a single top-level folder is rejected),
  every sequence of the set present, every frame of each sequence.
- YouTube-VOS: `Annotations/<video>/<frame>.png` for exactly the frames that the meta.json lists
  (the union of its objects' frames).

Everything is validated before anything is written, and the zip is deterministic: sorted entries,
fixed timestamps and permissions, so the same predictions always give the same bytes (and the same
DVC hash).
"""

import io
import zipfile
from pathlib import Path

from tqdm import tqdm

from rvos.errors import RvosError
from rvos.masks import read_mask

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
