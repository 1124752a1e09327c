"""DAVIS-2017 region (J) and boundary (F) measures, per-object statistics and the two sequence protocols.

Every scoring rule follows the official davis2017-evaluation code, so that the numbers are equal to
its numbers (docs/metrics.md lists the rules and where they come from). The implementation is our own
and is built for speed:

- J for every (prediction id, ground-truth id) pair of a frame comes from one histogram of pixel id
  pairs, instead of one pair of full-frame masks per pair;
- the boundary of each mask is extracted once per frame, and dilated at most once, on a crop around
  the object: a 1-px boundary dilated by a disk of radius r cannot reach further than r pixels, so
  the crop gives the same numbers as the full frame at a fraction of the cost;
- each PNG is read once, frame by frame, so a sequence never sits in memory as a float64 tensor.

Sequences are independent; `rvos.metrics.evaluate` scores them in a process pool.
"""

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from rvos.errors import RvosError
from rvos.masks import VOID_ID, read_mask

BOUND_TH = 0.008  # F tolerance as a fraction of the image diagonal (official default)
MAX_PROPOSALS = 20  # most object proposals allowed per sequence in the unsupervised task
RECALL_THRESHOLD = 0.5  # a frame counts towards Recall when its value is strictly above this
N_DECAY_BINS = 4


# --------------------------------------------------------------------------------------------------
# Per-frame measures on whole masks: the readable reference (used by tests and small callers)
# --------------------------------------------------------------------------------------------------


def boundary_radius(height: int, width: int) -> int:
    """F tolerance in pixels: ceil(0.008 * image diagonal), e.g. 8 at 480x854 and 6 at 360x640."""
    return math.ceil(BOUND_TH * math.sqrt(height * height + width * width))


@functools.cache
def disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 structuring element: 1 where dx^2 + dy^2 <= r^2 (as skimage's disk(r))."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius).astype(np.uint8)


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """1-px boundary map (H, W) bool of a binary (H, W) mask, with the official `_seg2bmap` semantics.

    A pixel is a boundary pixel when it differs from its east, south or south-east neighbour. A
    neighbour outside the image does not exist, so the image border is never a boundary: the last row
    only compares east, the last column only south, and the bottom-right pixel is never set.
    """
    seg = mask.astype(bool, copy=False)
    bmap = np.zeros(seg.shape, dtype=bool)
    bmap[:, :-1] |= seg[:, :-1] ^ seg[:, 1:]  # east
    bmap[:-1, :] |= seg[:-1, :] ^ seg[1:, :]  # south
    bmap[:-1, :-1] |= seg[:-1, :-1] ^ seg[1:, 1:]  # south-east
    return bmap


def jaccard(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    """J of two binary (H, W) masks: |P & G| / |P | G| outside `void`; 1 when the union is empty."""
    gt, pred = gt.astype(bool), pred.astype(bool)
    keep = np.ones_like(gt) if void is None else ~void.astype(bool)
    inter = np.count_nonzero(gt & pred & keep)
    union = np.count_nonzero((gt | pred) & keep)
    return float(j_from_counts(np.array(inter), np.array(union - inter), np.array(0)))


def f_measure(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    """F of two binary (H, W) masks: boundary precision/recall within ceil(0.008 * diagonal) pixels."""
    keep = np.ones(gt.shape, dtype=bool) if void is None else ~void.astype(bool)
    kernel = disk(boundary_radius(*gt.shape))
    gt_edge = seg2bmap(gt.astype(bool) & keep)
    pred_edge = seg2bmap(pred.astype(bool) & keep)
    gt_near = cv2.dilate(gt_edge.view(np.uint8), kernel).view(bool)
    pred_near = cv2.dilate(pred_edge.view(np.uint8), kernel).view(bool)
    counts = [
        np.count_nonzero(pred_edge),
        np.count_nonzero(gt_edge),
        np.count_nonzero(pred_edge & gt_near),
        np.count_nonzero(gt_edge & pred_near),
    ]
    return float(f_from_counts(*(np.array(c) for c in counts)))


def j_from_counts(inter: np.ndarray, pred_only: np.ndarray, gt_only: np.ndarray) -> np.ndarray:
    """J from pixel counts (same shapes): inter / (inter + pred_only + gt_only), 1 where that is 0."""
    union = inter + pred_only + gt_only
    inter = inter.astype(np.float64)
    return np.divide(inter, union, out=np.ones_like(inter), where=union > 0)


def f_from_counts(
    n_pred: np.ndarray, n_gt: np.ndarray, hit_pred: np.ndarray, hit_gt: np.ndarray
) -> np.ndarray:
    """F from boundary pixel counts (same shapes), with the official special cases.

    n_pred, n_gt: boundary pixels of each mask; hit_pred: prediction boundary pixels near the ground-truth
    boundary; hit_gt: the reverse. An empty boundary has precision (or recall) 1, so empty vs empty
    scores 1 and empty vs non-empty scores 0. The float operations are the official ones, in its order,
    so the values are bit-identical.
    """
    n_pred, n_gt = n_pred.astype(np.float64), n_gt.astype(np.float64)
    precision = np.divide(hit_pred, n_pred, out=np.ones_like(n_pred), where=n_pred > 0)
    recall = np.divide(hit_gt, n_gt, out=np.ones_like(n_gt), where=n_gt > 0)
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)


# --------------------------------------------------------------------------------------------------
# Fast per-frame scoring: boundaries and their dilations as crops around each object
# --------------------------------------------------------------------------------------------------


class Crop(NamedTuple):
    """A binary image window: `pixels` (h, w) bool whose top-left pixel sits at (y, x) of the frame."""

    y: int
    x: int
    pixels: np.ndarray

    def count(self) -> int:
        return int(np.count_nonzero(self.pixels))


def boundary_crop(mask: np.ndarray) -> Crop | None:
    """The `seg2bmap` boundary of a (H, W) bool mask, cropped around the object; None if the mask is empty.

    The crop is the object's bounding box plus one pixel on each side (clipped to the frame): boundary
    pixels can sit one pixel above/left of the object, and the pixel below/right is needed as their
    neighbour. Outside this window the full-frame boundary map is 0, and inside it equals the crop's own
    map, because the window's last row/column is either empty or the frame's last row/column.
    """
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return None
    height, width = mask.shape
    y0, x0 = max(y - 1, 0), max(x - 1, 0)
    y1, x1 = min(y + h + 1, height), min(x + w + 1, width)
    return Crop(y0, x0, seg2bmap(mask[y0:y1, x0:x1]))


def dilate_crop(edge: Crop, radius: int, frame_shape: tuple[int, int]) -> Crop:
    """`edge` dilated by disk(radius), on its window grown by `radius` (clipped to the frame).

    Equal to the full-frame dilation on that window and 0 outside it; cv2 ignores pixels beyond the
    image, like the official full-frame call.
    """
    height, width = frame_shape
    h, w = edge.pixels.shape
    top, left = min(radius, edge.y), min(radius, edge.x)
    bottom, right = min(radius, height - edge.y - h), min(radius, width - edge.x - w)
    padded = cv2.copyMakeBorder(edge.pixels.view(np.uint8), top, bottom, left, right, cv2.BORDER_CONSTANT, 0)
    return Crop(edge.y - top, edge.x - left, cv2.dilate(padded, disk(radius)).view(bool))


def overlap(a: Crop, b: Crop) -> int:
    """Number of frame pixels set in both crops."""
    y0, x0 = max(a.y, b.y), max(a.x, b.x)
    y1 = min(a.y + a.pixels.shape[0], b.y + b.pixels.shape[0])
    x1 = min(a.x + a.pixels.shape[1], b.x + b.pixels.shape[1])
    if y0 >= y1 or x0 >= x1:
        return 0
    a_win = a.pixels[y0 - a.y : y1 - a.y, x0 - a.x : x1 - a.x]
    b_win = b.pixels[y0 - b.y : y1 - b.y, x0 - b.x : x1 - b.x]
    return int(np.count_nonzero(a_win & b_win))


def pair_histogram(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(256, 256) int64 counts of pixels with ground-truth id g and predicted id p, at [g, p].

    Only the bounding box of all non-zero pixels is histogrammed (the rest is background in both),
    then its pixel count is put back into [0, 0].
    """
    x, y, w, h = cv2.boundingRect(gt | pred)
    pairs = (gt[y : y + h, x : x + w].astype(np.intp) << 8) | pred[y : y + h, x : x + w]  # (h, w)
    hist = np.bincount(pairs.ravel(), minlength=256 * 256).reshape(256, 256)
    hist[0, 0] += gt.size - w * h
    return hist


class FrameScorer:
    """J and F of (predicted id, ground-truth id) pairs of one frame.

    Each id's boundary, and its dilation, is computed at most once, however many pairs use it. With
    `use_void`, ground-truth pixels 255 are void: they are removed from the predicted masks and from
    every count (the unsupervised protocol). Without it they are plain background (semi-supervised).
    """

    def __init__(self, gt: np.ndarray, pred: np.ndarray, radius: int, use_void: bool) -> None:
        self.gt, self.pred, self.radius = gt, pred, radius  # (H, W) uint8 id maps
        hist = pair_histogram(gt, pred)
        void = hist[VOID_ID].sum() > 0 if use_void else False
        self.keep = gt != VOID_ID if void else None  # (H, W) bool: pixels that are scored, or None
        self.hist = hist
        self.gt_sizes = hist.sum(axis=1)  # (256,) pixels of each ground-truth id
        # (256,) pixels of each predicted id, outside the void when it is used
        self.pred_sizes = hist[:VOID_ID].sum(axis=0) if use_void else hist.sum(axis=0)
        self._edges: dict[tuple[str, int], tuple[Crop | None, int]] = {}  # boundary crop, pixel count
        self._near: dict[tuple[str, int], Crop] = {}

    def scores(self, pred_ids: np.ndarray, gt_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """J and F of the mask pred == pred_ids[i] against gt == gt_ids[i]: two float64 arrays (n,)."""
        pred_ids, gt_ids = np.asarray(pred_ids, dtype=np.intp), np.asarray(gt_ids, dtype=np.intp)
        inter = self.hist[gt_ids, pred_ids]  # (n,)
        j = j_from_counts(inter, self.pred_sizes[pred_ids] - inter, self.gt_sizes[gt_ids] - inter)

        n_pred, n_gt = self._edge_counts("pred", pred_ids), self._edge_counts("gt", gt_ids)  # (n,)
        hit_pred, hit_gt = np.zeros(len(pred_ids), np.int64), np.zeros(len(pred_ids), np.int64)
        # Only pairs where both boundaries exist need the dilations; the rest is the special-case table.
        for i in np.flatnonzero((n_pred > 0) & (n_gt > 0)).tolist():
            p, g = int(pred_ids[i]), int(gt_ids[i])
            hit_pred[i] = overlap(self._edge("pred", p)[0], self._dilated("gt", g))
            hit_gt[i] = overlap(self._edge("gt", g)[0], self._dilated("pred", p))
        return j, f_from_counts(n_pred, n_gt, hit_pred, hit_gt)

    def _edge_counts(self, side: str, ids: np.ndarray) -> np.ndarray:
        """(n,) boundary pixel count of each id's mask; each distinct id is extracted once."""
        unique, inverse = np.unique(ids, return_inverse=True)
        counts = np.array([self._edge(side, int(obj_id))[1] for obj_id in unique], dtype=np.int64)
        return counts[inverse]

    def _edge(self, side: str, obj_id: int) -> tuple[Crop | None, int]:
        key = (side, obj_id)
        if key not in self._edges:
            sizes = self.pred_sizes if side == "pred" else self.gt_sizes
            if sizes[obj_id] == 0:  # absent id: skip the full-frame comparison
                self._edges[key] = (None, 0)
            else:
                mask = (self.pred if side == "pred" else self.gt) == obj_id  # (H, W) bool
                if side == "pred" and self.keep is not None:
                    mask &= self.keep
                edge = boundary_crop(mask)
                self._edges[key] = (edge, 0 if edge is None else edge.count())
        return self._edges[key]

    def _dilated(self, side: str, obj_id: int) -> Crop:
        key = (side, obj_id)
        if key not in self._near:
            self._near[key] = dilate_crop(self._edges[key][0], self.radius, self.gt.shape)
        return self._near[key]


# --------------------------------------------------------------------------------------------------
# Per-object statistics
# --------------------------------------------------------------------------------------------------


def decay_indices(n_frames: int) -> np.ndarray:
    """The 5 bin edges (frame indices) of the Decay statistic, computed like the official code.

    round(linspace(1, N, 5) + 1e-10) - 1: the 1e-10 makes .5 round up. The official code then casts
    to uint8, which wraps above 255 (N = 300 gives [0, 75, 150, 224, 43]); `% 256` reproduces that.
    """
    edges = np.round(np.linspace(1, n_frames, N_DECAY_BINS + 1) + 1e-10) - 1
    return edges.astype(np.int64) % 256


def _mean_or_nan(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else math.nan


def object_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(Mean, Recall, Decay) of one object's per-frame values (N,) float64.

    Recall counts values strictly above 0.5. Decay = mean of the first bin - mean of the last bin;
    neighbouring bins share their edge frame. A bin emptied by the uint8 wrap gives NaN, as officially.
    """
    edges = decay_indices(len(values))
    first, last = values[edges[0] : edges[1] + 1], values[edges[3] : edges[4] + 1]
    mean = _mean_or_nan(values)
    recall = _mean_or_nan(values > RECALL_THRESHOLD)
    return mean, recall, _mean_or_nan(first) - _mean_or_nan(last)


# --------------------------------------------------------------------------------------------------
# Sequence protocols
# --------------------------------------------------------------------------------------------------


@dataclass
class SequenceScores:
    """Per-frame J and F of the scored objects of one sequence, in the official report order."""

    name: str
    j: np.ndarray  # (objects, frames) float64
    f: np.ndarray  # (objects, frames) float64
    matching: list[tuple[int, int]] | None = None  # unsupervised: (proposal id, ground-truth id) per row


def _read_frame(path: Path, shape: tuple[int, int] | None, reference: Path) -> np.ndarray:
    """Read an id map (H, W) uint8 and check it has the size of `reference`."""
    ids = read_mask(path)
    if shape is not None and ids.shape != shape:
        raise RvosError(
            f"{path}: mask is {ids.shape[1]}x{ids.shape[0]}, but the ground truth {reference} "
            f"is {shape[1]}x{shape[0]}"
        )
    return ids


def _first_frame_objects(first_gt: np.ndarray) -> int:
    """Number of ground-truth objects = largest non-void id of the first frame (missing ids count too)."""
    ids = first_gt[first_gt != VOID_ID]
    return int(ids.max()) if ids.size else 0


def _check_results_folder(results: Path, sequence: str) -> None:
    if not results.is_dir():
        raise RvosError(f"{results}: no results folder for sequence {sequence}")


def score_semi_supervised(sequence: str, gt_paths: list[Path], results: Path) -> SequenceScores:
    """Semi-supervised protocol: object k is predicted id k; frames 1..T-2 are scored, void is background.

    The objects are ids 1..K with K the largest id of the first ground-truth frame; a missing id is a
    (phantom) object with an empty mask. A predicted id above K is an error (the official code quits
    without scores); fewer predicted ids than K score as empty predictions.
    """
    if len(gt_paths) < 3:
        raise RvosError(
            f"{gt_paths[0].parent if gt_paths else sequence}: {len(gt_paths)} ground-truth frames; the "
            "semi-supervised protocol needs at least 3 (the first and last frames are not scored)"
        )
    _check_results_folder(results, sequence)
    first = read_mask(gt_paths[0])
    n_objects = _first_frame_objects(first)
    radius = boundary_radius(*first.shape)
    ids = np.arange(1, n_objects + 1)
    scored = gt_paths[1:-1]
    j = np.zeros((n_objects, len(scored)))
    f = np.zeros((n_objects, len(scored)))
    for t, gt_path in enumerate(scored):
        gt = _read_frame(gt_path, first.shape, gt_paths[0])
        pred_path = results / f"{gt_path.stem}.png"
        pred = _read_frame(pred_path, gt.shape, gt_path)
        top = int(pred.max())
        if top > n_objects:
            raise RvosError(
                f"{pred_path}: object id {top} is above the {n_objects} objects of the first "
                f"ground-truth frame {gt_paths[0].name} of {sequence}"
            )
        if n_objects:
            j[:, t], f[:, t] = FrameScorer(gt, pred, radius, use_void=False).scores(ids, ids)
    return SequenceScores(sequence, j, f)


def score_unsupervised(sequence: str, gt_paths: list[Path], results: Path) -> SequenceScores:
    """Unsupervised protocol: all frames, void used, proposals matched to objects by the Hungarian method.

    Proposals are ids 1..P (P = largest id over all frames, at most 20), padded with empty proposals up to
    the number of objects. J and F are computed for every (proposal, object) pair; the matching maximises
    the sum of (mean_t J + mean_t F) / 2. Rows come back in proposal order, as in the official CSV.
    """
    if not gt_paths:
        raise RvosError(f"{sequence}: no ground-truth frames")
    _check_results_folder(results, sequence)
    first = read_mask(gt_paths[0])
    n_objects = _first_frame_objects(first)
    radius = boundary_radius(*first.shape)
    # Score every possible proposal row; ids absent from a frame are empty masks and cost nothing.
    n_rows = max(MAX_PROPOSALS, n_objects)
    pred_ids = np.repeat(np.arange(1, n_rows + 1), n_objects)  # (rows * objects,)
    gt_ids = np.tile(np.arange(1, n_objects + 1), n_rows)
    j = np.zeros((n_rows, n_objects, len(gt_paths)))
    f = np.zeros((n_rows, n_objects, len(gt_paths)))
    n_proposals = 0
    for t, gt_path in enumerate(gt_paths):
        gt = first if t == 0 else _read_frame(gt_path, first.shape, gt_paths[0])
        pred_path = results / f"{gt_path.stem}.png"
        pred = _read_frame(pred_path, gt.shape, gt_path)
        top = int(pred.max())
        if top > MAX_PROPOSALS:
            raise RvosError(
                f"{pred_path}: proposal id {top} is above the {MAX_PROPOSALS} proposals allowed "
                f"per sequence ({sequence})"
            )
        n_proposals = max(n_proposals, top)
        if n_objects:
            frame_j, frame_f = FrameScorer(gt, pred, radius, use_void=True).scores(pred_ids, gt_ids)
            j[:, :, t] = frame_j.reshape(n_rows, n_objects)
            f[:, :, t] = frame_f.reshape(n_rows, n_objects)
    # Same (proposals, objects, frames) layout as the official arrays, so the means are bit-identical.
    n_proposals = max(n_proposals, n_objects)
    j, f = j[:n_proposals], f[:n_proposals]
    score = (np.mean(j, axis=2) + np.mean(f, axis=2)) / 2  # (proposals, objects)
    from scipy.optimize import linear_sum_assignment  # here: scipy costs 0.3 s to import in each worker

    rows, cols = linear_sum_assignment(-score)
    matching = [(int(r) + 1, int(c) + 1) for r, c in zip(rows, cols)]
    return SequenceScores(sequence, j[rows, cols], f[rows, cols], matching)


def score_sequence(task: str, sequence: str, gt_paths: list[Path], results: Path) -> SequenceScores:
    """Score one sequence with the protocol of `task` ("semi-supervised" or "unsupervised")."""
    if task == "semi-supervised":
        return score_semi_supervised(sequence, gt_paths, results)
    if task == "unsupervised":
        return score_unsupervised(sequence, gt_paths, results)
    raise RvosError(f"unknown task {task!r}: expected semi-supervised or unsupervised")
