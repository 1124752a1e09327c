"""Zero-shot post-processing: proposals split into connected regions, each followed through the video."""

import numpy as np
import torch

from rvos.components import split_components
from rvos.config import InferConfig
from rvos.inference import VideoPrediction, zero_shot_maps

H, W = 40, 60


def frame(*boxes: tuple[int, int, int, int, int]) -> np.ndarray:
    """An id map with boxes (id, top, left, height, width)."""
    ids = np.zeros((H, W), np.uint8)
    for obj, top, left, height, width in boxes:
        ids[top : top + height, left : left + width] = obj
    return ids


def test_one_proposal_covering_two_separate_objects_becomes_two_tracked_ones():
    # proposal 1 covers two boxes that drift apart; proposal 2 is a single box
    video = [frame((1, 5, 2 + t, 8, 8), (1, 5, 30 + t, 8, 8), (2, 25, 40 - t, 10, 10)) for t in range(5)]
    out = split_components(video, min_area_fraction=0.01, limit=20)
    for t, ids in enumerate(out):
        assert ids[5, 2 + t] == 1  # left box of proposal 1: first region in raster order
        assert ids[5, 30 + t] == 2  # right box of proposal 1
        assert ids[25, 40 - t] == 3  # proposal 2
        assert set(np.unique(ids)) == {0, 1, 2, 3}
        assert np.array_equal(ids > 0, video[t] > 0)  # nothing is added or lost


def test_regions_that_touch_for_a_while_get_their_own_ids_back():
    apart = frame((1, 5, 5, 10, 10), (1, 5, 30, 10, 10))
    touching = frame((1, 5, 5, 10, 10), (1, 5, 15, 10, 10))  # one region of 200 pixels
    out = split_components([apart, touching, apart], min_area_fraction=0.01, limit=20)
    assert out[0][10, 10] == 1 and out[0][10, 35] == 2
    assert set(np.unique(out[1])) == {0, 1}  # the merged region continues the track it overlaps most
    assert out[2][10, 10] == 1 and out[2][10, 35] == 2


def test_fragments_are_dropped_and_a_lone_region_keeps_its_id_when_it_jumps():
    first = frame((1, 0, 0, 10, 10), (1, 30, 50, 2, 2))  # 4-pixel fragment: below 1% of 2400
    jumped = frame((1, 28, 45, 10, 10))  # no overlap with where it was
    out = split_components([first, jumped], min_area_fraction=0.01, limit=20)
    assert out[0][31, 51] == 0 and out[0][5, 5] == 1
    assert out[1][30, 50] == 1


def test_the_largest_regions_are_kept_under_the_limit():
    video = [frame((1, 0, 0, 5, 5), (1, 20, 0, 12, 12), (2, 0, 40, 8, 8))] * 2
    out = split_components(video, min_area_fraction=0.0, limit=2)
    assert out[0][0, 0] == 0  # the smallest region is dropped
    assert out[0][25, 5] == 1 and out[0][2, 45] == 2  # the rest renumbered in order of appearance


def test_zero_shot_maps_split_only_when_asked():
    probs = torch.zeros(2, 3, H, W, dtype=torch.float16)
    probs[:, 0, 5:15, 5:15] = 0.9  # slot 0: two separate objects
    probs[:, 0, 25:35, 40:50] = 0.9
    probs[:, 2, 25:35, 5:15] = 0.8  # slot 2: one object; slot 1 is empty
    prediction = VideoPrediction(probs, [1, 2, 3], {})
    split = list(zero_shot_maps(prediction, (H, W), InferConfig(split_components=True)))
    assert [split[0][10, 10], split[0][30, 45], split[0][30, 10]] == [1, 2, 3]
    whole = list(zero_shot_maps(prediction, (H, W), InferConfig(split_components=False)))
    assert [whole[0][10, 10], whole[0][30, 45], whole[0][30, 10]] == [1, 1, 2]


def test_zero_shot_maps_use_their_own_threshold():
    probs = torch.zeros(1, 2, H, W, dtype=torch.float16)
    probs[0, 0, 5:15, 5:15] = 0.9
    probs[0, 1, 25:35, 5:15] = 0.3  # an unsure slot: an object at 0.2, nothing at 0.5
    prediction = VideoPrediction(probs, [1, 2], {})
    low = list(zero_shot_maps(prediction, (H, W), InferConfig(zero_shot_mask_threshold=0.2)))
    assert [low[0][10, 10], low[0][30, 10]] == [1, 2]
    high = list(
        zero_shot_maps(prediction, (H, W), InferConfig(zero_shot_mask_threshold=0.5, mask_threshold=0.2))
    )
    assert [high[0][10, 10], high[0][30, 10]] == [1, 0]
