"""Inference: the online Segmenter (one-shot objects, zero-shot proposals), id maps, the infer stage."""

import numpy as np
import pytest
import torch

from rvos import Segmenter, paths
from rvos.config import InferConfig, config_from_dict
from rvos.data.dataset import LmdbVideos
from rvos.errors import RvosError
from rvos.inference import OnlineProposals, frame_id_map, paste_given
from rvos.masks import read_mask
from rvos.model.rvos import RVOS, ModelSpec
from rvos.pipeline.infer import infer_stage
from rvos.pipeline.tracking import StageRun
from rvos.pipeline.train import train_stage
from tests.factories import TINY_TRAINING, prepare_project

H, W = 32, 48


def model(one_shot: bool, slots: int = 3, target_similarity: bool = False) -> RVOS:
    torch.manual_seed(0)
    return RVOS(ModelSpec("resnet18", 16, 3, slots, one_shot, target_similarity=target_similarity)).eval()


def frames(count: int, size: tuple[int, int] = (H, W)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, size=(count, *size, 3), dtype=np.uint8)


def blob(obj: int, top: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[top : top + 8, 10:30] = obj
    return mask


def test_one_shot_objects_start_at_their_first_annotation():
    # object 1 is given on frame 0, object 3 only on frame 3 (a YouTube-VOS object appearing later);
    # frame 3's annotation repeats object 1, which must not restart it
    segmenter = Segmenter(model(True), (H, W), InferConfig(mask_threshold=0.01))
    later = np.maximum(blob(1, 0), blob(3, 20))
    given = {0: blob(1, 0), 3: later}
    maps = [segmenter.step(frame, given.get(t)) for t, frame in enumerate(frames(5))]
    assert np.array_equal(maps[0], blob(1, 0))  # the given frame is the annotation
    assert all(3 not in ids for ids in maps[:3])  # object 3 does not exist before frame 3
    assert np.array_equal(maps[3] == 3, blob(3, 20) == 3)
    assert all(2 not in ids for ids in maps)  # id 2 is not an object of this video
    assert all(1 in ids for ids in maps[1:])  # at this low threshold the model keeps reporting object 1
    assert segmenter.objects == [1, 3]
    assert segmenter.probs.shape == (3, H, W) and segmenter.probs.dtype == torch.float16


@pytest.mark.parametrize("trained_threshold", [0.0, 0.2])
def test_one_shot_feedback_is_binarized_at_the_inference_threshold(trained_threshold):
    """`infer.feedback_threshold` binarizes what a one-shot slot reads on the next frame, for models
    trained with binarized feedback; a soft-feedback model (the original's) keeps soft feedback."""

    def segment(threshold: float) -> Segmenter:
        torch.manual_seed(0)
        spec = ModelSpec("resnet18", 16, 3, 2, True, feedback_threshold=trained_threshold)
        segmenter = Segmenter(RVOS(spec).eval(), (H, W), InferConfig(feedback_threshold=threshold))
        segmenter.step(frames(2)[0], blob(1, 4))
        segmenter.step(frames(2)[1])
        return segmenter

    probs = segment(0.5).probs[:1].float()  # slot 0's probabilities on frame 1
    middle = float(probs.median())  # a threshold that splits this frame's pixels in two halves
    fed = segment(middle)._prev[0, :1]
    if trained_threshold == 0.0:
        assert torch.allclose(fed, probs, atol=1e-3)  # soft, as the original
    else:
        near = (probs - middle).abs() < 2e-3  # float16 rounding of the stored probabilities
        assert torch.equal(fed.bool()[~near], (probs > middle)[~near])
        assert torch.equal(fed, (fed > 0.5).float()) and 0 < fed.mean() < 1


@pytest.mark.parametrize("target_similarity", [False, True])
def test_more_slots_and_batched_frames_give_the_same_masks(target_similarity):
    # Information flows from lower to higher slots only (and empty slots' references are similar to
    # nothing), so decoding more slots changes nothing; `run` with batch 1 is `step`; id maps come
    # back at the frame's own resolution.
    video = frames(4, (2 * H, 2 * W))
    first = np.kron(blob(1, 4), np.ones((2, 2), np.uint8))
    one_slot = Segmenter(model(True, target_similarity=target_similarity), (H, W), slots=1)
    by_step = [one_slot.step(f, first if t == 0 else None) for t, f in enumerate(video)]
    all_slots = Segmenter(model(True, target_similarity=target_similarity), (H, W))
    by_run = list(all_slots.run(((f, first if t == 0 else None) for t, f in enumerate(video)), batch=1))
    assert all(a.shape == (2 * H, 2 * W) for a in by_step)
    assert all(np.array_equal(a, b) for a, b in zip(by_step, by_run, strict=True))


def test_one_shot_ids_must_fit_the_slots_and_zero_shot_takes_no_annotation():
    with pytest.raises(RvosError, match="object id 5 is above the model's 3 slots"):
        Segmenter(model(True), (H, W)).step(frames(1)[0], blob(5, 0))
    with pytest.raises(RvosError, match="object id 3 is above the 2 slots this Segmenter decodes"):
        Segmenter(model(True), (H, W), slots=2).step(frames(1)[0], blob(3, 0))
    with pytest.raises(RvosError, match="annotation is 32x48 but the id maps are 64x96"):
        Segmenter(model(True), (H, W)).step(frames(1, (64, 96))[0], blob(1, 0))
    with pytest.raises(RvosError, match="zero-shot model: it takes no annotation"):
        Segmenter(model(False), (H, W)).step(frames(1)[0], blob(1, 0))


def test_zero_shot_proposals_are_numbered_as_they_appear():
    probs = torch.zeros(4, 5, H, W, dtype=torch.float16)
    probs[1:, 1, :10, :10] = 0.9  # slot 1: an object from frame 1 on
    probs[:, 3, :, :] = 0.8  # slot 3: everywhere
    probs[2, 4, 0, 0] = 0.9  # slot 4: one pixel, below the minimum area
    proposals = OnlineProposals(5, threshold=0.5, min_area_fraction=0.01, limit=20)
    assert [proposals.update(p) for p in probs] == [[0, 0, 0, 1, 0]] + [[0, 2, 0, 1, 0]] * 3
    capped = OnlineProposals(5, threshold=0.5, min_area_fraction=0.01, limit=1)
    assert [capped.update(p) for p in probs][-1] == [0, 0, 0, 1, 0]


@pytest.mark.parametrize(("mask_input", "canvas"), [(False, False), (True, False), (True, True)])
def test_zero_shot_inference_matches_the_training_forward_pass(mask_input, canvas):
    # Online inference (one frame at a time) must run the same recurrence as training: with mask
    # input, an empty mask on frame 0 and the slot's own fed-back mask after it.
    torch.manual_seed(0)
    spec = ModelSpec(
        "resnet18",
        16,
        3,
        3,
        False,
        feedback_threshold=0.4,
        zero_shot_mask_input=mask_input,
        zero_shot_canvas=canvas,
    )
    net = RVOS(spec).eval()
    video = frames(4)
    segmenter = Segmenter(net, (H, W))
    probs = []
    for frame in video:
        segmenter.step(frame)
        probs.append(segmenter.probs.float())
    with torch.no_grad():
        expected = torch.sigmoid(net(torch.from_numpy(video).permute(0, 3, 1, 2)[None].float() / 255, 3))
    assert torch.allclose(torch.stack(probs), expected[0], atol=2e-3)


def test_id_maps_are_at_original_resolution_with_the_given_frame_pasted():
    probs = torch.zeros(2, H, W, dtype=torch.float16)
    probs[0, :16] = 0.9
    probs[1, 8:24] = 0.7  # overlaps slot 0 on rows 8..15 with a lower probability
    given = np.zeros((96, 144), np.uint8)
    given[50:60, 50:60] = 2
    first = frame_id_map(probs, [1, 2], (96, 144), 0.5)
    paste_given(first, given, [1, 2])
    second = frame_id_map(probs, [1, 2], (96, 144), 0.5)
    assert first.shape == second.shape == (96, 144)
    assert set(np.unique(first)) == {0, 2} and (first == 2).sum() == 100  # the given frame is the annotation
    assert second[0, 0] == 1 and second[30, 0] == 1  # overlap goes to the more probable slot
    assert second[60, 0] == 2 and second[90, 0] == 0
    assert not frame_id_map(probs, [0, 2], (96, 144), 0.5)[0, 0]  # slot 0 not reported


@pytest.mark.parametrize("mode", ["one_shot", "zero_shot"])
def test_infer_stage_and_the_api_frame_by_frame_give_the_same_masks(tmp_path, monkeypatch, mode):
    monkeypatch.chdir(tmp_path)
    values = {**TINY_TRAINING, "mode": mode, "train": {**TINY_TRAINING["train"], "epochs": 1}}
    prepare_project(tmp_path, values)
    config = config_from_dict(values)
    train_stage(config, StageRun())
    infer_stage(config, StageRun())
    for video in ("val-0", "val-1"):
        files = sorted((paths.PREDICTIONS / video).iterdir())
        assert [f.name for f in files] == [f"{t:05d}.png" for t in range(8)]
        assert read_mask(files[3]).shape == (48, 80)  # the raw size, not the 32x48 model input
    first = paths.RAW / "Annotations" / "480p" / "val-0" / "00000.png"
    if mode == "one_shot":
        assert np.array_equal(read_mask(paths.PREDICTIONS / "val-0" / "00000.png"), read_mask(first))

    # The public API, fed the same frames one at a time from a generator, gives the stage's masks.
    segmenter = Segmenter.from_checkpoint(paths.BEST_CHECKPOINT, device="cpu", infer=config.infer)
    videos = LmdbVideos(paths.LMDB)
    info = videos.videos["val-0"]
    given = {0: read_mask(first)} if mode == "one_shot" else {}
    items = ((videos.frame("val-0", t), given.get(t)) for t in range(len(info.frames)))
    stage = [read_mask(paths.PREDICTIONS / "val-0" / f"{stem}.png") for stem in info.frames]
    for t, ids in enumerate(segmenter.run(items, out_size=info.size)):
        assert np.array_equal(ids, stage[t]), t
    # `step` encodes each frame alone: equal up to the encoder's float rounding at thresholds
    segmenter.reset()
    stepped = [segmenter.step(videos.frame("val-0", t), given.get(t), info.size) for t in range(8)]
    agree = np.mean([np.mean(a == b) for a, b in zip(stepped, stage)])
    assert agree > 0.99, agree

    other = config_from_dict({**values, "mode": "zero_shot" if mode == "one_shot" else "one_shot"})
    with pytest.raises(RvosError, match="re-run the train stage"):
        infer_stage(other, StageRun())


@torch.no_grad()
def test_target_references_come_from_each_objects_own_annotated_frame():
    # Object 1 is given on frame 0 and object 3 on frame 2: each reference is taken from the features of
    # the frame its object was given on, the background's from the first annotation, and they stay.
    net = model(True, target_similarity=True)
    video = frames(4)
    given = {0: blob(1, 0), 2: np.maximum(blob(1, 0), blob(3, 20))}
    segmenter = Segmenter(net, (H, W))
    for t, frame in enumerate(video):
        segmenter.step(frame, given.get(t))
    images = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255
    features = net.encode(images)

    def expected(t: int, annotation: np.ndarray) -> list[torch.Tensor]:
        ids = torch.from_numpy(annotation.astype(np.int64))
        masks = torch.stack([ids == k for k in (1, 2, 3)])[None].float()
        return net.references([f[t : t + 1] for f in features], masks)

    first, later = expected(0, given[0]), expected(2, given[2])
    for k, mine in enumerate(segmenter._references):
        assert torch.allclose(mine[0, :2], first[k][0, :2], atol=1e-5)  # background and object 1: frame 0
        assert torch.equal(mine[0, 2], torch.zeros_like(mine[0, 2]))  # id 2 was never given
        assert torch.allclose(mine[0, 3], later[k][0, 3], atol=1e-5)  # object 3: frame 2
