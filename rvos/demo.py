"""`rvos demo`: segment your own video (a file or a folder of frames) outside the pipeline.

With a first-frame mask the objects in it are tracked (one-shot); without one the model finds the
objects itself (zero-shot). The model's architecture, input size and mode come from the checkpoint,
so any checkpoint of the pipeline or from `rvos import-original` works. Which inference settings
(thresholds, zero-shot post-processing) apply is decided by `demo_infer_config`.
"""

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from rvos.atomic import atomic_dir
from rvos.config import InferConfig, build_section, load_config
from rvos.data.videos import read_video, resize_frame, resize_mask
from rvos.device import resolve_device
from rvos.errors import RvosError
from rvos.inference import id_maps, predict_video, zero_shot_maps
from rvos.masks import overlay, read_mask, write_mask
from rvos.model.checkpoint import load_model

log = logging.getLogger(__name__)


def demo_infer_config(
    params: Path | None, checkpoint: dict, overrides: dict[str, Any]
) -> tuple[InferConfig, str]:
    """The inference settings of a demo run, and a few words on where they came from.

    Highest first: `overrides` (the command's flags); the `infer` section of `params` when that file
    exists (a run inside the project); the settings the checkpoint carries (`info.infer`); the
    defaults, which equal the shipped params.yaml.
    """
    infer, source = InferConfig(), "defaults"
    stored = checkpoint.get("info", {}).get("infer")
    if stored is not None:
        infer, source = build_section(InferConfig, stored, "infer (checkpoint)"), "the checkpoint"
    if params is not None and params.is_file():
        infer, source = load_config(params).infer, str(params)
    given = {key: value for key, value in overrides.items() if value is not None}
    if given:
        try:
            infer = dataclasses.replace(infer, **given)
        except ValueError as err:
            raise RvosError(f"demo flags: {err}") from None
        source += " + flags"
    return infer, source


def read_first_mask(path: Path, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Palette / grayscale id mask; a binary 0/255 mask is one object (id 1)."""
    mask = read_mask(path)
    if mask.shape != frame_shape[:2]:
        raise RvosError(
            f"{path}: mask is {mask.shape[0]}x{mask.shape[1]} but the frames are "
            f"{frame_shape[0]}x{frame_shape[1]}"
        )
    if set(np.unique(mask).tolist()) <= {0, 255}:
        mask = (mask == 255).astype(np.uint8)
    if not mask.any():
        raise RvosError(f"{path}: the mask has no object")
    return mask


def run_demo(
    source: Path,
    out: Path,
    checkpoint_path: Path,
    mask_path: Path | None,
    device_name: str,
    params: Path | None,
    overrides: dict[str, Any],
    write_overlays: bool,
) -> None:
    """Segment `source` into one palette PNG per frame in `out` (and `<frame>_overlay.jpg` previews)."""
    if out.exists() and any(out.iterdir()):
        raise RvosError(f"{out}: output folder exists and is not empty")
    model, checkpoint = load_model(checkpoint_path)
    one_shot = model.spec.one_shot
    if one_shot and mask_path is None:
        raise RvosError(f"{checkpoint_path}: one-shot model: give the first-frame annotation with --mask")
    if not one_shot and mask_path is not None:
        raise RvosError(f"{checkpoint_path}: zero-shot model: it takes no --mask (use a one-shot checkpoint)")
    infer, settings_source = demo_infer_config(params, checkpoint, overrides)
    log.info("inference settings from %s: %s", settings_source, dataclasses.asdict(infer))
    device = resolve_device(device_name)
    model.to(device)

    frames, names = read_video(source)
    height, width = checkpoint["input_size"]
    small = np.stack([resize_frame(f, height, width) for f in frames])
    annotations = given = None
    if one_shot:
        first = read_first_mask(mask_path, frames[0].shape)
        annotations, given = {0: resize_mask(first, height, width)}, {0: first}
    start = time.perf_counter()
    prediction = predict_video(model, small, annotations, device)
    seconds = time.perf_counter() - start
    if one_shot:
        maps = id_maps(prediction, frames[0].shape[:2], infer.mask_threshold, given)
    else:
        maps = zero_shot_maps(prediction, frames[0].shape[:2], infer)
    objects: set[int] = set()
    with atomic_dir(out) as tmp:
        for t, ids in enumerate(tqdm(maps, total=len(names), desc="write", unit="frame")):
            objects.update(np.unique(ids[ids > 0]).tolist())
            write_mask(tmp / f"{names[t]}.png", ids)
            if write_overlays:
                preview = cv2.cvtColor(overlay(frames[t], ids), cv2.COLOR_RGB2BGR)
                cv2.imwrite(str(tmp / f"{names[t]}_overlay.jpg"), preview)
    log.info(
        "%d frames, %d objects (%s) at %.1f frames/s -> %s",
        len(frames),
        len(objects),
        "one-shot" if one_shot else "zero-shot",
        len(frames) / max(seconds, 1e-9),
        out,
    )
