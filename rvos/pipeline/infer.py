"""DVC stage `infer`: models/rvos.pt + data/lmdb (+ data/raw annotations) -> outputs/predictions.

One palette PNG per frame of every test video, at the video's original resolution
(`outputs/predictions/<video>/<frame>.png`), written to a temporary folder renamed into place.
Each video streams through `rvos.segmenter.Segmenter`, the same online path as `rvos demo` and the
Python API: the index's pre-resized frames go in one at a time (encoded 16 at once), and one-shot
objects are given on the first frame whose annotation shows them.
"""

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rvos import paths
from rvos.atomic import atomic_dir
from rvos.config import Config
from rvos.data.dataset import LmdbVideos
from rvos.data.layout import dataset_layout, read_list
from rvos.data.videos import find_video
from rvos.device import resolve_device
from rvos.errors import RvosError
from rvos.masks import decode_mask, write_mask
from rvos.model.checkpoint import load_model
from rvos.pipeline.tracking import StageRun
from rvos.segmenter import Segmenter, slots_for

log = logging.getLogger(__name__)


def infer_stage(config: Config, run: StageRun) -> None:
    """Segment every test video into outputs/predictions/<video>/<frame>.png (original resolution)."""
    device = resolve_device(config.runtime.device)
    model, checkpoint = load_model(paths.BEST_CHECKPOINT)
    model.to(device)
    if checkpoint["mode"] != config.mode:
        raise RvosError(
            f"{paths.BEST_CHECKPOINT}: model was trained for {checkpoint['mode']} but params.yaml mode is "
            f"{config.mode} (re-run the train stage)"
        )
    videos = LmdbVideos(paths.LMDB)
    if [videos.height, videos.width] != list(checkpoint["input_size"]):
        raise RvosError(
            f"{paths.LMDB}: frames are {videos.height}x{videos.width} but the model expects "
            f"{checkpoint['input_size'][0]}x{checkpoint['input_size'][1]} (re-run index and train)"
        )
    names = read_list(paths.split_list("test"))
    layout = dataset_layout(config.data.source)
    one_shot = config.mode == "one_shot"
    frame_count, seconds = 0, 0.0
    with atomic_dir(paths.PREDICTIONS) as out:
        for name in tqdm(names, desc="infer", unit="video"):
            info = videos.videos[name]
            given = first_annotations(videos, name, paths.RAW, layout) if one_shot else {}
            segmenter = Segmenter(
                model, (videos.height, videos.width), config.infer, slots_for(model, info.all_objects)
            )
            items = ((videos.frame(name, t), given.get(t)) for t in range(len(info.frames)))
            for stem, ids in zip(info.frames, segmenter.run(items, out_size=info.size), strict=True):
                write_mask(out / name / f"{stem}.png", ids)
            seconds += segmenter.seconds
            frame_count += len(info.frames)
    fps = frame_count / max(seconds, 1e-9)
    log.info("segmented %d videos, %d frames at %.1f frames/s on %s", len(names), frame_count, fps, device)
    run.log_metrics({"frames_per_s": fps, "frames": frame_count, "videos": len(names)})


def first_annotations(videos: LmdbVideos, name: str, raw: Path, layout: str) -> dict[int, np.ndarray]:
    """The one-shot input of a test video: frame -> its original-resolution annotation, for each frame
    on which some object appears for the first time (DAVIS: frame 0; YouTube-VOS objects may start
    later). The segmenter starts the objects it has not seen yet and ignores the others."""
    files = find_video(raw, layout, name)
    return {t: decode_mask(files.masks[t], str(files.masks[t])) for t in videos.videos[name].first_frames}
