"""Inference: segment whole videos with a trained RVOS model (used by the `infer` stage and `rvos demo`).

- The encoder runs on chunks of frames at once; the recurrent decoder then walks the frames in order,
  carrying the temporal state of every slot.
- One-shot: object k lives in slot k-1. It is given on its first annotated frame (frame 0 in DAVIS;
  later for YouTube-VOS objects that appear mid-video): its mask is written into the slot's
  previous-mask input there, and from then on the slot receives its own prediction (soft, or binarized
  at `model.feedback_threshold`, as in training). Only as many slots as the highest object id are
  decoded.
- Zero-shot: every slot is decoded, without masks or (`zero_shot_mask_input`) with its own previous
  prediction; slots that are non-empty on some frame become the proposals (at most `max_proposals`),
  numbered 1..P in slot order. With `infer.split_components` each proposal is then split into its
  connected regions, followed through the video (`rvos.components`).
- Each frame's id map takes, per pixel, the most probable slot above the threshold
  (`infer.mask_threshold`; zero-shot: `infer.zero_shot_mask_threshold`), computed from the
  probabilities upsampled to the video's original resolution.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rvos.components import split_components
from rvos.config import InferConfig
from rvos.data.dataset import LmdbVideos
from rvos.data.videos import find_video, object_ids
from rvos.errors import RvosError
from rvos.masks import VOID_ID, decode_mask
from rvos.model.rvos import RVOS

ENCODER_CHUNK = 16  # frames encoded per batch


@dataclass
class VideoPrediction:
    probs: torch.Tensor  # (T, S, h, w) float16 slot probabilities at the model's input size
    slot_ids: list[int]  # output object id of each slot, 0 = not reported
    given: dict[int, list[int]]  # frame -> ids whose annotation was given on that frame (one-shot)


def first_appearances(annotations: dict[int, np.ndarray]) -> dict[int, list[int]]:
    """frame -> ids that appear for the first time in the annotation of that frame."""
    seen: set[int] = set()
    result = {}
    for t in sorted(annotations):
        new = [i for i in object_ids(annotations[t]) if i not in seen]
        if new:
            result[t] = new
            seen.update(new)
    return result


@torch.no_grad()
def predict_video(
    model: RVOS,
    frames: np.ndarray,  # (T, h, w, 3) uint8 RGB at the model's input size
    annotations: dict[int, np.ndarray] | None,  # frame -> (h, w) id map at input size (one-shot)
    device: torch.device,
) -> VideoPrediction:
    """Run the model over a whole video -> slot probabilities and which slot is which object."""
    spec = model.spec
    T, h, w = frames.shape[:3]
    if spec.one_shot:
        if not annotations:
            raise RvosError("one-shot inference needs the first-frame annotation")
        given = first_appearances(annotations)
        all_ids = sorted(i for ids in given.values() for i in ids)
        if all_ids[-1] > spec.max_objects:
            raise RvosError(
                f"object id {all_ids[-1]} is above the model's {spec.max_objects} slots (model.max_objects)"
            )
        num_slots = all_ids[-1]
        slot_ids = [i + 1 if i + 1 in all_ids else 0 for i in range(num_slots)]
    else:
        given, num_slots, slot_ids = {}, spec.max_objects, list(range(1, spec.max_objects + 1))

    probs = torch.zeros(T, num_slots, h, w, dtype=torch.float16)
    prev = torch.zeros(1, num_slots, h, w, device=device) if spec.takes_masks else None
    started = torch.zeros(num_slots, dtype=torch.bool)
    temporal = None
    for chunk_start in range(0, T, ENCODER_CHUNK):
        chunk = torch.from_numpy(frames[chunk_start : chunk_start + ENCODER_CHUNK]).to(device)
        features = model.encode(chunk.permute(0, 3, 1, 2).float() / 255.0)
        for offset in range(chunk.shape[0]):
            t = chunk_start + offset
            for obj in given.get(t, []):
                mask = torch.from_numpy(annotations[t] == obj).to(device)
                prev[0, obj - 1] = mask.float()
                started[obj - 1] = True
            logits, temporal = model.decode(
                [f[offset : offset + 1] for f in features], num_slots, (h, w), prev, temporal
            )
            frame_probs = torch.sigmoid(logits.float())
            if spec.one_shot:
                for obj in given.get(t, []):
                    frame_probs[0, obj - 1] = prev[0, obj - 1]  # a given object's mask is the annotation
                frame_probs[0, ~started.to(device)] = 0.0  # objects not introduced yet
            if spec.takes_masks:
                prev = model.feedback(frame_probs)
            probs[t] = frame_probs[0].half().cpu()
    return VideoPrediction(probs, slot_ids, given)


def select_proposals(
    prediction: VideoPrediction, threshold: float, min_area_fraction: float, limit: int
) -> None:
    """Zero-shot: keep the slots that are non-empty on some frame (at most `limit`), ids 1..P."""
    areas = (prediction.probs > threshold).flatten(2).float().mean(dim=2)  # (T, S) fraction of the frame
    non_empty = (areas >= min_area_fraction).any(dim=0).tolist()
    kept = [slot for slot, keep in enumerate(non_empty) if keep][:limit]
    prediction.slot_ids = [kept.index(s) + 1 if s in kept else 0 for s in range(len(non_empty))]


def zero_shot_maps(
    prediction: VideoPrediction, out_size: tuple[int, int], infer: InferConfig
) -> Iterable[np.ndarray]:
    """Zero-shot output: the non-empty slots as proposals, one id per connected region if asked."""
    threshold = infer.zero_shot_mask_threshold
    select_proposals(prediction, threshold, infer.min_area_fraction, infer.max_proposals)
    maps = id_maps(prediction, out_size, threshold)
    if infer.split_components:
        return split_components(maps, infer.min_area_fraction, infer.max_proposals)
    return maps


def id_maps(
    prediction: VideoPrediction,
    out_size: tuple[int, int],
    threshold: float,
    given_full: dict[int, np.ndarray] | None = None,  # frame -> original-resolution annotation
) -> Iterator[np.ndarray]:
    """Yield one (H, W) uint8 id map per frame at the original resolution."""
    slot_ids = torch.tensor([0, *prediction.slot_ids], dtype=torch.uint8)
    reported = torch.tensor(prediction.slot_ids) > 0
    for t in range(prediction.probs.shape[0]):
        probs = prediction.probs[t][reported].float()[None]  # (1, S', h, w)
        ids = slot_ids[1:][reported]
        out = np.zeros(out_size, np.uint8)
        if probs.shape[1]:
            up = F.interpolate(probs, size=out_size, mode="bilinear", align_corners=True)[0]
            best, slot = up.max(dim=0)
            out = torch.where(best > threshold, ids[slot], 0).numpy().astype(np.uint8)
        if given_full is not None and t in prediction.given:
            for obj in prediction.given[t]:
                annotation = given_full[t]
                out[out == obj] = 0
                out[annotation == obj] = obj
        yield out


def given_annotations(videos: LmdbVideos, name: str, raw: Path, layout: str) -> tuple[dict, dict]:
    """The one-shot inputs of a test video: each object's first annotated frame, at model and
    original resolution. DAVIS gives every object in frame 0; YouTube-VOS objects may start later."""
    info = videos.videos[name]
    first_frame_of: dict[int, int] = {}
    for t, ids in enumerate(info.objects):
        for obj in ids:
            first_frame_of.setdefault(obj, t)
    frames_needed = sorted(set(first_frame_of.values()))
    files = find_video(raw, layout, name)
    annotations, given_full = {}, {}
    for t in frames_needed:
        keep = [obj for obj, first in first_frame_of.items() if first == t]
        small = videos.mask(name, t)
        full = decode_mask(files.masks[t], str(files.masks[t]))
        annotations[t] = np.where(np.isin(small, keep), small, 0).astype(np.uint8)
        given_full[t] = np.where(np.isin(full, keep) & (full != VOID_ID), full, 0).astype(np.uint8)
    return annotations, given_full
