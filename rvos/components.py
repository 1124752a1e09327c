"""Zero-shot post-processing: one proposal per connected region, followed through the video.

Why: a zero-shot slot often segments several separate objects at once (two shapes on opposite sides
of the frame in one slot). The unsupervised protocol matches each proposal to at most one object,
so such a slot scores for one of them and the others count as missed. Splitting every proposal into
its connected components, and following each component from frame to frame by its overlap with
where it was the last time it was seen, reports them as separate proposals.

What it cannot do: objects that touch stay one region. What it costs: an object that an occluder
cuts in two becomes two proposals, of which only one is scored. It runs online (`RegionTracker`,
one frame at a time), so a video of any length streams through it.
`infer.split_components: false` gives the model's own proposals (the original behaviour).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass
class _Track:
    label: int  # output id (1..limit, in order of first appearance), 0 = not reported
    last: np.ndarray  # (H, W) bool: the region the last time it was seen


def connected_parts(mask: np.ndarray, min_area: float) -> list[np.ndarray]:
    """(H, W) bool -> its 8-connected components of at least `min_area` pixels, in raster order."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    parts = [labels == k for k in range(1, count)]
    return [part for part in parts if part.sum() >= min_area]


def _assign(parts: list[np.ndarray], tracks: list[_Track]) -> list[int | None]:
    """Index of the track each part continues (None: a new track), Hungarian on overlap (IoU)."""
    if len(parts) == 1 and len(tracks) == 1:
        return [0]  # a proposal that stays one region keeps its track, however fast it moves
    result: list[int | None] = [None] * len(parts)
    if not parts or not tracks:
        return result
    iou = np.array([[(p & t.last).sum() / max((p | t.last).sum(), 1) for t in tracks] for p in parts])
    for part, track in zip(*linear_sum_assignment(-iou)):
        if iou[part, track] > 0:
            result[part] = int(track)
    return result


class RegionTracker:
    """Online: per-frame (H, W) uint8 proposal maps in, the same frames with one id per tracked region out.

    Regions smaller than `min_area_fraction` of the frame are dropped (fragments, not objects). Ids
    1..`limit` are given in order of first appearance; a region that first appears when `limit` ids
    are taken is followed but never reported (0), so it cannot take another region's id later.
    (The whole-video version this replaces kept the `limit` largest regions over the video, which
    needs the last frame before the first one can be written; both agree whenever the video has at
    most `limit` regions.)
    """

    def __init__(self, min_area_fraction: float, limit: int) -> None:
        self.min_area_fraction, self.limit = min_area_fraction, limit
        self.tracks: dict[int, list[_Track]] = {}  # proposal id -> the regions it has been split into
        self.reported = 0  # ids handed out so far

    def step(self, ids: np.ndarray) -> np.ndarray:
        out = np.zeros(ids.shape, np.uint8)
        for proposal in np.unique(ids[ids > 0]).tolist():
            parts = connected_parts(ids == proposal, self.min_area_fraction * ids.size)
            own = self.tracks.setdefault(proposal, [])
            for part, index in zip(parts, _assign(parts, own)):
                if index is None:
                    label = 0
                    if self.reported < self.limit:
                        self.reported += 1
                        label = self.reported
                    own.append(_Track(label, part))
                    index = len(own) - 1
                track = own[index]
                track.last = part
                out[part] = track.label
        return out


def split_components(
    id_maps: Iterable[np.ndarray], min_area_fraction: float, limit: int
) -> Iterator[np.ndarray]:
    """`RegionTracker` over a sequence of proposal maps (lazily, one frame at a time)."""
    tracker = RegionTracker(min_area_fraction, limit)
    for ids in id_maps:
        yield tracker.step(ids)
