"""DVC stage `infer`: models/rvos.pt + data/lmdb (+ data/raw annotations) -> outputs/predictions.

One palette PNG per frame of every test video, at the video's original resolution
(`outputs/predictions/<video>/<frame>.png`), written to a temporary folder renamed into place.
"""

import logging
import time

import numpy as np
from tqdm import tqdm

from rvos import paths
from rvos.atomic import atomic_dir
from rvos.config import Config
from rvos.data.dataset import LmdbVideos
from rvos.data.layout import dataset_layout, read_list
from rvos.device import resolve_device
from rvos.errors import RvosError
from rvos.inference import given_annotations, id_maps, predict_video, zero_shot_maps
from rvos.masks import write_mask
from rvos.model.checkpoint import load_model
from rvos.pipeline.tracking import StageRun

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
    infer = config.infer
    frame_count, seconds = 0, 0.0
    with atomic_dir(paths.PREDICTIONS) as out:
        for name in tqdm(names, desc="infer", unit="video"):
            info = videos.videos[name]
            frames = np.stack([videos.frame(name, t) for t in range(len(info.frames))])
            annotations = given_full = None
            if config.mode == "one_shot":
                annotations, given_full = given_annotations(videos, name, paths.RAW, layout)
            start = time.perf_counter()
            prediction = predict_video(model, frames, annotations, device)
            seconds += time.perf_counter() - start
            frame_count += len(info.frames)
            if config.mode == "zero_shot":
                maps = zero_shot_maps(prediction, info.size, infer)
            else:
                maps = id_maps(prediction, info.size, infer.mask_threshold, given_full)
            for stem, ids in zip(info.frames, maps):
                write_mask(out / name / f"{stem}.png", ids)
    fps = frame_count / max(seconds, 1e-9)
    log.info("segmented %d videos, %d frames at %.1f frames/s on %s", len(names), frame_count, fps, device)
    run.log_metrics({"frames_per_s": fps, "frames": frame_count, "videos": len(names)})
