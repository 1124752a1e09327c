"""Zero-shot post-processing: proposals split into connected regions, each followed through the video."""

import numpy as np
import torch

from rvos.components import RegionTracker, split_components
from rvos.config import InferConfig
from rvos.inference import ZeroShotMaps

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
    out = list(split_components(video, min_area_fraction=0.01, limit=20))
    for t, ids in enumerate(out):
        assert ids[5, 2 + t] == 1  # left box of proposal 1: first region in raster order
        assert ids[5, 30 + t] == 2  # right box of proposal 1
        assert ids[25, 40 - t] == 3  # proposal 2
        assert set(np.unique(ids)) == {0, 1, 2, 3}
        assert np.array_equal(ids > 0, video[t] > 0)  # nothing is added or lost


def test_regions_that_touch_for_a_while_get_their_own_ids_back():
    apart = frame((1, 5, 5, 10, 10), (1, 5, 30, 10, 10))
    touching = frame((1, 5, 5, 10, 10), (1, 5, 15, 10, 10))  # one region of 200 pixels
    out = list(split_components([apart, touching, apart], min_area_fraction=0.01, limit=20))
    assert out[0][10, 10] == 1 and out[0][10, 35] == 2
    assert set(np.unique(out[1])) == {0, 1}  # the merged region continues the track it overlaps most
    assert out[2][10, 10] == 1 and out[2][10, 35] == 2


def test_fragments_are_dropped_and_a_lone_region_keeps_its_id_when_it_jumps():
    first = frame((1, 0, 0, 10, 10), (1, 30, 50, 2, 2))  # 4-pixel fragment: below 1% of 2400
    jumped = frame((1, 28, 45, 10, 10))  # no overlap with where it was
    out = list(split_components([first, jumped], min_area_fraction=0.01, limit=20))
    assert out[0][31, 51] == 0 and out[0][5, 5] == 1
    assert out[1][30, 50] == 1


def test_regions_beyond_the_limit_are_followed_but_never_reported():
    # Online, the first `limit` regions to appear get ids; a later one stays 0 on every frame, even
    # when an earlier region has gone, so that ids never change meaning within a video.
    tracker = RegionTracker(min_area_fraction=0.0, limit=2)
    first = tracker.step(frame((1, 0, 0, 5, 5), (1, 20, 0, 12, 12)))
    assert first[0, 0] == 1 and first[25, 5] == 2
    second = tracker.step(frame((1, 0, 0, 5, 5), (1, 20, 0, 12, 12), (2, 0, 40, 8, 8)))
    assert second[2, 45] == 0  # a third region: over the limit
    third = tracker.step(frame((1, 20, 0, 12, 12), (2, 0, 40, 8, 8)))
    assert third[25, 5] == 2 and third[2, 45] == 0


def zero_shot_maps(probs: torch.Tensor, infer: InferConfig) -> list[np.ndarray]:
    """(T, S, h, w) float16 probabilities -> id maps, one frame at a time."""
    maps = ZeroShotMaps(probs.shape[1], infer)
    return [maps(p, (H, W)) for p in probs]


def test_zero_shot_maps_split_only_when_asked():
    probs = torch.zeros(2, 3, H, W, dtype=torch.float16)
    probs[:, 0, 5:15, 5:15] = 0.9  # slot 0: two separate objects
    probs[:, 0, 25:35, 40:50] = 0.9
    probs[:, 2, 25:35, 5:15] = 0.8  # slot 2: one object; slot 1 is empty
    split = zero_shot_maps(probs, InferConfig(split_components=True))
    assert [split[0][10, 10], split[0][30, 45], split[0][30, 10]] == [1, 2, 3]
    whole = zero_shot_maps(probs, InferConfig(split_components=False))
    assert [whole[0][10, 10], whole[0][30, 45], whole[0][30, 10]] == [1, 1, 2]


def test_zero_shot_proposals_appearing_later_take_the_next_ids():
    probs = torch.zeros(3, 3, H, W, dtype=torch.float16)
    probs[:, 2, 25:35, 5:15] = 0.8  # slot 2 from the start
    probs[2:, 0, 5:15, 5:15] = 0.9  # slot 0 only from frame 2 on
    for split in (True, False):
        maps = zero_shot_maps(probs, InferConfig(split_components=split))
        assert maps[0][30, 10] == 1 and maps[1][10, 10] == 0
        assert maps[2][30, 10] == 1 and maps[2][10, 10] == 2


def test_zero_shot_maps_use_their_own_threshold():
    probs = torch.zeros(1, 2, H, W, dtype=torch.float16)
    probs[0, 0, 5:15, 5:15] = 0.9
    probs[0, 1, 25:35, 5:15] = 0.3  # an unsure slot: an object at 0.2, nothing at 0.5
    low = zero_shot_maps(probs, InferConfig(zero_shot_mask_threshold=0.2))
    assert [low[0][10, 10], low[0][30, 10]] == [1, 2]
    high = zero_shot_maps(probs, InferConfig(zero_shot_mask_threshold=0.5, mask_threshold=0.2))
    assert [high[0][10, 10], high[0][30, 10]] == [1, 0]
