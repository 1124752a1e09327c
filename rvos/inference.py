"""Inference, one frame at a time: the pieces `rvos.segmenter.Segmenter` puts together.

- One-shot: object k lives in slot k-1. It is given on its first annotated frame (frame 0 in DAVIS;
  later for YouTube-VOS objects that appear mid-video): its mask is written into the slot's
  previous-mask input there, and from then on the slot receives its own prediction (soft, as in the
  original, or binarized at `infer.feedback_threshold`, below training's `model.feedback_threshold`).
  Before that frame the slot reports nothing.
- Zero-shot: every slot is decoded, without masks or (`zero_shot_mask_input`) with its own previous
  prediction. A slot becomes a proposal on the first frame where it covers at least
  `infer.min_area_fraction` of the frame (`OnlineProposals`), at most `infer.max_proposals` of them,
  numbered 1..P in the order they appear. With `infer.split_components` each proposal is then split
  into its connected regions, followed through the video (`rvos.components`).
- Each frame's id map takes, per pixel, the most probable reported slot above the threshold
  (`infer.mask_threshold`; zero-shot: `infer.zero_shot_mask_threshold`), computed from the
  probabilities upsampled to the video's original resolution (`frame_id_map`).

Why online zero-shot proposals: the whole-video rule this replaces kept a slot if it was non-empty on
*some* frame, which needs the whole video before the first frame can be written. Online, a slot
joins the proposals when it first shows up. The two rules give the same id maps except on the frames
before a slot first covers `min_area_fraction`: there the old rule let its few pixels (fewer than
the minimum area) compete in the per-pixel choice and the online rule does not. Proposals are
numbered by first appearance instead of slot order, which the unsupervised protocol (it matches
proposals to objects) does not see.
"""

import numpy as np
import torch
import torch.nn.functional as F

from rvos.components import RegionTracker
from rvos.config import InferConfig


def frame_id_map(
    probs: torch.Tensor,  # (S, h, w) float16 slot probabilities at the model's input size, on the CPU
    slot_ids: list[int],  # output id of each slot, 0 = not reported
    out_size: tuple[int, int],
    threshold: float,
) -> np.ndarray:
    """-> (H, W) uint8 id map at `out_size`: per pixel the most probable reported slot above `threshold`."""
    ids = torch.tensor(slot_ids, dtype=torch.uint8)
    reported = ids > 0
    if not reported.any():
        return np.zeros(out_size, np.uint8)
    # Upsampled in float32 from the float16 probabilities, as the pipeline always has.
    up = F.interpolate(probs[reported].float()[None], size=out_size, mode="bilinear", align_corners=True)[0]
    best, slot = up.max(dim=0)  # (H, W) each
    return torch.where(best > threshold, ids[reported][slot], 0).numpy().astype(np.uint8)


def paste_given(ids: np.ndarray, given: np.ndarray, objects: list[int]) -> None:
    """On the frame an object is given, its output is the annotation itself (in place)."""
    for obj in objects:
        ids[ids == obj] = 0
        ids[given == obj] = obj


class OnlineProposals:
    """Zero-shot: which slots are proposals so far, and their ids (1..P in order of appearance)."""

    def __init__(self, slots: int, threshold: float, min_area_fraction: float, limit: int) -> None:
        self.threshold, self.min_area_fraction, self.limit = threshold, min_area_fraction, limit
        self.number = [0] * slots  # slot -> proposal id, 0 = not (yet) a proposal

    def update(self, probs: torch.Tensor) -> list[int]:
        """(S, h, w) float16 probabilities of the next frame -> proposal id of each slot."""
        areas = (probs > self.threshold).flatten(1).float().mean(dim=1)  # (S,) fraction of the frame
        # compared in float32, like the whole-video rule this replaces
        for slot, present in enumerate((areas >= self.min_area_fraction).tolist()):
            count = sum(n > 0 for n in self.number)
            if present and self.number[slot] == 0 and count < self.limit:
                self.number[slot] = count + 1
        return list(self.number)


class ZeroShotMaps:
    """Zero-shot post-processing, one frame at a time: probabilities -> proposal id map."""

    def __init__(self, slots: int, infer: InferConfig) -> None:
        self.threshold = infer.zero_shot_mask_threshold
        self.proposals = OnlineProposals(slots, self.threshold, infer.min_area_fraction, infer.max_proposals)
        self.regions = (
            RegionTracker(infer.min_area_fraction, infer.max_proposals) if infer.split_components else None
        )

    def __call__(self, probs: torch.Tensor, out_size: tuple[int, int]) -> np.ndarray:
        """(S, h, w) float16 probabilities of the next frame -> (H, W) uint8 ids at `out_size`."""
        numbers = self.proposals.update(probs)
        if self.regions is None:
            return frame_id_map(probs, numbers, out_size, self.threshold)
        # The regions get their own ids; the tracker sees the proposals keyed by slot, so that it
        # meets them in slot order within a frame, as the whole-video version did.
        keys = [slot + 1 if number else 0 for slot, number in enumerate(numbers)]
        return self.regions.step(frame_id_map(probs, keys, out_size, self.threshold))
