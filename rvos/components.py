"""Zero-shot post-processing: one proposal per connected region, followed through the video.

Why: a zero-shot slot often segments several separate objects at once (two shapes on opposite sides
of the frame in one slot). The unsupervised protocol matches each proposal to at most one object,
so such a slot scores for one of them and the others count as missed. Splitting every proposal into
its connected components, and following each component from frame to frame by its overlap with
where it was the last time it was seen, reports them as separate proposals.

What it cannot do: objects that touch stay one region. What it costs: an object that an occluder
cuts in two becomes two proposals, of which only one is scored.
`infer.split_components: false` gives the model's own proposals (the original behaviour).
"""

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass
class _Track:
    label: int  # provisional id, unique within the video, in order of first appearance
    last: np.ndarray  # (H, W) bool: the region the last time it was seen
    area: int = 0  # pixels over the whole video


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


def split_components(id_maps: Iterable[np.ndarray], min_area_fraction: float, limit: int) -> list[np.ndarray]:
    """Per-frame (H, W) uint8 proposal maps -> the same frames with one id per tracked region.

    Regions smaller than `min_area_fraction` of the frame are dropped (fragments, not objects).
    When there are more than `limit` regions, the largest over the video are kept. Ids 1..P are
    given in order of first appearance.
    """
    tracks: dict[int, list[_Track]] = {}  # proposal id -> the regions it has been split into
    labelled = []  # (H, W) int32 provisional labels per frame
    created = 0
    for ids in id_maps:
        out = np.zeros(ids.shape, np.int32)
        for proposal in np.unique(ids[ids > 0]).tolist():
            parts = connected_parts(ids == proposal, min_area_fraction * ids.size)
            own = tracks.setdefault(proposal, [])
            for part, index in zip(parts, _assign(parts, own)):
                if index is None:
                    created += 1
                    own.append(_Track(created, part))
                    index = len(own) - 1
                track = own[index]
                track.last = part
                track.area += int(part.sum())
                out[part] = track.label
        labelled.append(out)

    everything = [track for own in tracks.values() for track in own]
    kept = sorted(track.label for track in sorted(everything, key=lambda t: -t.area)[:limit])
    new_id = np.zeros(created + 1, np.uint8)
    new_id[kept] = np.arange(1, len(kept) + 1)
    return [new_id[out] for out in labelled]
