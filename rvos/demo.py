"""`rvos demo`: segment your own video (a file or a folder of frames) outside the pipeline.

With `--mask` (the first frame's annotation) the objects in it are tracked (one-shot); without it
the model finds the objects itself (zero-shot). The model's architecture, input size and mode come
from the checkpoint, so any checkpoint of the pipeline or from `rvos import-original` works.
"""

import argparse
import logging
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from rvos.atomic import atomic_dir
from rvos.config import InferConfig
from rvos.data.lmdb_index import resize_frame, resize_mask
from rvos.data.videos import FRAME_SUFFIXES, decode_frame
from rvos.errors import RvosError
from rvos.infer import id_maps, predict_video, zero_shot_maps
from rvos.masks import read_mask, voc_palette, write_mask
from rvos.model.checkpoint import load_model
from rvos.train import resolve_device

log = logging.getLogger(__name__)


def read_input(source: Path) -> tuple[list[np.ndarray], list[str]]:
    """-> (RGB frames, output names): a folder's frames by file name, a video's by frame index."""
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not files:
            raise RvosError(f"{source}: no frames (.jpg/.jpeg/.png) in the folder")
        frames = [decode_frame(p, str(p)) for p in tqdm(files, desc="read", unit="frame")]
        names = [p.stem for p in files]
    elif source.is_file():
        capture = cv2.VideoCapture(str(source))
        frames = []
        while capture.isOpened():
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        capture.release()
        if not frames:
            raise RvosError(f"{source}: cannot read any frame from this video (unsupported or corrupt file)")
        names = [f"{t:05d}" for t in range(len(frames))]
    else:
        raise RvosError(f"{source}: no such video file or folder")
    sizes = {f.shape for f in frames}
    if len(sizes) > 1:
        raise RvosError(f"{source}: frames have different sizes {sorted(sizes)[:2]}")
    return frames, names


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


def demo_command(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise RvosError(f"{out}: output folder exists and is not empty")
    model, checkpoint = load_model(args.checkpoint)
    one_shot = model.spec.one_shot
    if one_shot and not args.mask:
        raise RvosError(f"{args.checkpoint}: one-shot model: give the first-frame annotation with --mask")
    if not one_shot and args.mask:
        raise RvosError(f"{args.checkpoint}: zero-shot model: it takes no --mask (use a one-shot checkpoint)")
    device = resolve_device(args.device)
    model.to(device)

    frames, names = read_input(Path(args.input))
    height, width = checkpoint["input_size"]
    small = np.stack([resize_frame(f, height, width) for f in frames])
    annotations = given = None
    if one_shot:
        first = read_first_mask(Path(args.mask), frames[0].shape)
        annotations, given = {0: resize_mask(first, height, width)}, {0: first}
    start = time.perf_counter()
    prediction = predict_video(model, small, annotations, device)
    seconds = time.perf_counter() - start
    defaults = InferConfig()
    if one_shot:
        maps = id_maps(prediction, frames[0].shape[:2], defaults.mask_threshold, given)
    else:
        maps = zero_shot_maps(prediction, frames[0].shape[:2], defaults)
    objects: set[int] = set()
    with atomic_dir(out) as tmp:
        for t, ids in enumerate(tqdm(maps, total=len(names), desc="write", unit="frame")):
            objects.update(np.unique(ids[ids > 0]).tolist())
            write_mask(tmp / f"{names[t]}.png", ids)
            if args.overlay:
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


_COLOURS = np.array(voc_palette(), dtype=np.uint8).reshape(256, 3)


def overlay(frame: np.ndarray, ids: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend each object's palette colour over the frame."""
    coloured = _COLOURS[ids]
    blend = (frame * (1 - alpha) + coloured * alpha).astype(np.uint8)
    return np.where(ids[..., None] > 0, blend, frame)
