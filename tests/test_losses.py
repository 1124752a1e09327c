import pytest
import torch

from rvos.losses import (
    EMPTY_SMOOTHING,
    empty_slot_loss,
    frame_loss,
    match_slots,
    pixel_bce_loss,
    slot_overlap_loss,
    soft_iou_loss,
)


def square(size: int, top: int, left: int, side: int) -> torch.Tensor:
    mask = torch.zeros(size, size)
    mask[top : top + side, left : left + side] = 1.0
    return mask


def test_soft_iou_matches_hand_computation():
    target = square(10, 0, 0, 4)  # 16 pixels
    probs = square(10, 0, 0, 2) * 1.0 + square(10, 5, 5, 2) * 0.5  # 4 inside (p=1), 4 outside (p=.5)
    # intersection 4, union = sum(p + y - p*y) = 16 + 2 = 18
    assert soft_iou_loss(probs, target).item() == pytest.approx(1 - 4 / 18, abs=1e-6)
    assert soft_iou_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)
    # against an empty target soft IoU cannot tell a good prediction from a bad one: that is the gap
    empty = torch.zeros(10, 10)
    assert soft_iou_loss(torch.zeros(10, 10), empty).item() == pytest.approx(1.0)
    assert soft_iou_loss(torch.ones(10, 10), empty).item() == pytest.approx(1.0)


def test_empty_slot_loss_rewards_empty_predictions():
    size = 20
    smoothing = EMPTY_SMOOTHING * size * size
    assert empty_slot_loss(torch.zeros(size, size)).item() == 0.0
    blob = square(size, 0, 0, 10)
    assert empty_slot_loss(blob).item() == pytest.approx(100 / (100 + smoothing))
    assert empty_slot_loss(blob * 0.1) < empty_slot_loss(blob)


def test_frame_loss_uses_only_active_slots():
    target = torch.stack([square(8, 0, 0, 4), torch.zeros(8, 8), square(8, 4, 4, 4)])[None]  # (1, 3, 8, 8)
    probs = torch.stack([square(8, 0, 0, 4), square(8, 0, 0, 8), torch.zeros(8, 8)])[None]
    active = torch.tensor([[True, True, False]])
    # slot 0 perfect (0), slot 1 empty target but full prediction (64 / (64 + 0.64)), slot 2 inactive
    expected = 0.0 + 64 / (64 + EMPTY_SMOOTHING * 64)
    assert frame_loss(probs, target, active, empty_weight=1.0).item() == pytest.approx(expected, abs=1e-6)
    assert frame_loss(probs, target, active, empty_weight=0.0).item() == pytest.approx(0.0, abs=1e-6)
    everything = frame_loss(probs, target, torch.ones(1, 3, dtype=torch.bool), 1.0)
    # slots with objects average: (0 for slot 0 + 1 for the missed slot 2) / 2
    assert everything.item() == pytest.approx(0.5 + expected, abs=1e-5)


def test_pixel_bce_averages_active_slots_and_keeps_pulling_a_saturated_slot():
    target = torch.stack([square(8, 0, 0, 4), torch.zeros(8, 8), square(8, 4, 4, 4)])[None]  # (1, 3, 8, 8)
    logits = torch.full((1, 3, 8, 8), -6.0, requires_grad=True)  # every slot pushed empty
    active = torch.tensor([[True, True, False]])
    loss = pixel_bce_loss(logits, target, active)
    per_pixel = torch.nn.functional.binary_cross_entropy_with_logits(logits[0, :2], target[0, :2])
    assert loss.item() == pytest.approx(per_pixel.item(), abs=1e-6)
    loss.backward()
    assert torch.all(logits.grad[0, 2] == 0)  # inactive slot untouched
    # on the object's pixels the logit gradient is (p - 1) / pixels, not damped by the saturation ...
    assert logits.grad[0, 0, 0, 0].item() == pytest.approx(
        (torch.sigmoid(torch.tensor(-6.0)).item() - 1) / 128
    )
    # ... while soft IoU's gradient there is scaled by sigmoid'(-6) ~ 0.0025
    soft_logits = logits.detach().clone().requires_grad_(True)
    soft_iou_loss(torch.sigmoid(soft_logits[0, 0]), target[0, 0]).backward()
    assert abs(soft_logits.grad[0, 0, 0, 0].item()) < abs(logits.grad[0, 0, 0, 0].item()) / 10
    assert pixel_bce_loss(logits, target, torch.zeros(1, 3, dtype=torch.bool)).item() == 0.0


def test_hungarian_matching_recovers_a_permutation_within_the_first_slots():
    objects = torch.stack([square(12, 0, 0, 4), square(12, 6, 6, 5), square(12, 0, 7, 3)])
    # slots 0..2 predict objects 2, 0, 1; slot 3 also predicts object 0 but is beyond the object count
    probs = torch.stack([objects[2], objects[0], objects[1], objects[0]])
    assert match_slots(probs, objects) == [1, 2, 0]
    assert match_slots(probs, objects[:0]) == []


def test_overlap_loss_charges_duplicate_slots_only():
    a, b = square(12, 0, 0, 4), square(12, 6, 6, 4)
    disjoint = torch.stack([a, b, torch.zeros(12, 12)])[None]
    assert slot_overlap_loss(disjoint).item() == pytest.approx(0.0, abs=1e-6)
    duplicate = torch.stack([a, a, torch.zeros(12, 12)])[None]
    # pairs (0,1) IoU 1, (0,2) and (1,2) 0 -> mean 1/3
    assert slot_overlap_loss(duplicate).item() == pytest.approx(1 / 3, abs=1e-5)
    assert slot_overlap_loss(a[None, None]).item() == 0.0
