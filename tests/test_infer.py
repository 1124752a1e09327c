"""Inference: slot bookkeeping for one-shot and zero-shot, output size and ids, the infer stage."""

import numpy as np
import pytest
import torch

from rvos import paths
from rvos.config import config_from_dict
from rvos.errors import RvosError
from rvos.inference import (
    VideoPrediction,
    first_appearances,
    id_maps,
    predict_video,
    select_proposals,
)
from rvos.masks import read_mask
from rvos.model.rvos import RVOS, ModelSpec
from rvos.pipeline.infer import infer_stage
from rvos.pipeline.tracking import StageRun
from rvos.pipeline.train import train_stage
from tests.factories import TINY_TRAINING, prepare_project

H, W = 32, 48


def model(one_shot: bool, slots: int = 3) -> RVOS:
    torch.manual_seed(0)
    return RVOS(ModelSpec("resnet18", 16, 3, slots, one_shot)).eval()


def frames(count: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, size=(count, H, W, 3), dtype=np.uint8)


def blob(obj: int, top: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[top : top + 8, 10:30] = obj
    return mask


def test_first_appearances():
    annotations = {0: blob(1, 0), 3: np.maximum(blob(1, 0), blob(3, 20))}
    assert first_appearances(annotations) == {0: [1], 3: [3]}


def test_one_shot_objects_start_at_their_first_annotation():
    # object 1 is given on frame 0, object 3 only on frame 3 (a YouTube-VOS object appearing later)
    annotations = {0: blob(1, 0), 3: blob(3, 20)}
    prediction = predict_video(model(True), frames(5), annotations, torch.device("cpu"))
    assert prediction.probs.shape == (5, 3, H, W)  # decodes up to the highest id, no further
    assert prediction.slot_ids == [1, 0, 3]
    assert torch.equal(prediction.probs[0, 0], torch.from_numpy(blob(1, 0) == 1).half())  # given = annotation
    assert prediction.probs[:3, 2].abs().sum() == 0  # object 3 does not exist before frame 3
    assert torch.equal(prediction.probs[3, 2], torch.from_numpy(blob(3, 20) == 3).half())
    assert prediction.probs[:, 1].abs().sum() == 0  # id 2 is not an object of this video


def test_one_shot_needs_an_annotation_and_enough_slots():
    with pytest.raises(RvosError, match="needs the first-frame annotation"):
        predict_video(model(True), frames(2), None, torch.device("cpu"))
    with pytest.raises(RvosError, match="object id 5 is above the model's 3 slots"):
        predict_video(model(True), frames(2), {0: blob(5, 0)}, torch.device("cpu"))


def test_zero_shot_keeps_non_empty_slots_as_numbered_proposals():
    probs = torch.zeros(4, 5, H, W, dtype=torch.float16)
    probs[1, 1, :10, :10] = 0.9  # slot 1: a real object on one frame
    probs[:, 3, :, :] = 0.8  # slot 3: everywhere
    probs[2, 4, 0, 0] = 0.9  # slot 4: one pixel, below the minimum area
    prediction = VideoPrediction(probs, [1, 2, 3, 4, 5], {})
    select_proposals(prediction, threshold=0.5, min_area_fraction=0.01, limit=20)
    assert prediction.slot_ids == [0, 1, 0, 2, 0]
    select_proposals(prediction, threshold=0.5, min_area_fraction=0.01, limit=1)
    assert prediction.slot_ids == [0, 1, 0, 0, 0]


@pytest.mark.parametrize(("mask_input", "canvas"), [(False, False), (True, False), (True, True)])
def test_zero_shot_inference_matches_the_training_forward_pass(mask_input, canvas):
    # Whole-video inference (chunked encoder, one frame at a time) must run the same recurrence as
    # training: with mask input, an empty mask on frame 0 and the slot's own fed-back mask after it.
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
    prediction = predict_video(net, video, None, torch.device("cpu"))
    with torch.no_grad():
        expected = torch.sigmoid(net(torch.from_numpy(video).permute(0, 3, 1, 2)[None].float() / 255, 3))
    assert torch.allclose(prediction.probs.float(), expected[0], atol=2e-3)


def test_id_maps_are_at_original_resolution_with_the_given_frame_pasted():
    probs = torch.zeros(2, 2, H, W, dtype=torch.float16)
    probs[:, 0, :16] = 0.9
    probs[:, 1, 8:24] = 0.7  # overlaps slot 0 on rows 8..15 with a lower probability
    given_full = {0: np.zeros((96, 144), np.uint8)}
    given_full[0][50:60, 50:60] = 2
    prediction = VideoPrediction(probs, [1, 2], {0: [1, 2]})
    first, second = list(id_maps(prediction, (96, 144), 0.5, given_full))
    assert first.shape == second.shape == (96, 144)
    assert set(np.unique(first)) == {0, 2} and (first == 2).sum() == 100  # frame 0 is the annotation
    assert second[0, 0] == 1 and second[30, 0] == 1  # overlap goes to the more probable slot
    assert second[60, 0] == 2 and second[90, 0] == 0


@pytest.mark.parametrize("mode", ["one_shot", "zero_shot"])
def test_infer_stage_writes_every_test_frame_at_original_size(tmp_path, monkeypatch, mode):
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
    if mode == "one_shot":
        truth = read_mask(paths.RAW / "Annotations" / "480p" / "val-0" / "00000.png")
        assert np.array_equal(read_mask(paths.PREDICTIONS / "val-0" / "00000.png"), truth)
    other = config_from_dict({**values, "mode": "zero_shot" if mode == "one_shot" else "one_shot"})
    with pytest.raises(RvosError, match="re-run the train stage"):
        infer_stage(other, StageRun())
