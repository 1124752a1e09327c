"""Training losses: the original soft IoU, Hungarian slot matching for zero-shot, an empty-slot term
and an optional per-pixel cross-entropy.

Soft IoU (spec section 2): 1 - sum(p*y) / (sum(p + y - p*y) + 1e-6) per (clip, slot), with p the
sigmoid probabilities at full resolution.

What the original lacked: against an empty target soft IoU is the constant 1 whatever the prediction,
so a slot is never taught to stay empty, and zero-shot output needed ground truth to decide which
slots to report. Here slots whose target is empty (zero-shot slots beyond the objects, and objects
that have left the frame) get `sum(p) / (sum(p) + s)`, the soft IoU of an empty target with additive
smoothing s = 1% of the image: near 0 for an empty prediction, near 1 for an object-sized one.
"""

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

_EPS = 1e-6
EMPTY_SMOOTHING = 0.01  # of the image area


def soft_iou_loss(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(..., H, W) probabilities and binary targets -> (...) losses in [0, 1]."""
    intersection = (probs * targets).sum(dim=(-2, -1))
    union = (probs + targets - probs * targets).sum(dim=(-2, -1))
    return 1.0 - intersection / (union + _EPS)


def empty_slot_loss(probs: torch.Tensor) -> torch.Tensor:
    """(..., H, W) probabilities of slots that should be empty -> (...) losses in [0, 1)."""
    area = probs.sum(dim=(-2, -1))
    smoothing = EMPTY_SMOOTHING * probs.shape[-2] * probs.shape[-1]
    return area / (area + smoothing)


def frame_loss(
    probs: torch.Tensor,  # (B, S, H, W)
    targets: torch.Tensor,  # (B, S, H, W) binary
    active: torch.Tensor,  # (B, S) bool: slots that take part in the loss at all
    empty_weight: float,
) -> torch.Tensor:
    """Mean soft IoU over active slots with an object + empty_weight * mean empty loss over the rest."""
    has_object = targets.flatten(2).amax(dim=2) > 0
    with_object = active & has_object
    without_object = active & ~has_object
    loss = probs.new_zeros(())
    if with_object.any():
        loss = loss + soft_iou_loss(probs, targets)[with_object].mean()
    if empty_weight > 0 and without_object.any():
        loss = loss + empty_weight * empty_slot_loss(probs)[without_object].mean()
    return loss


def pixel_bce_loss(
    logits: torch.Tensor,  # (B, S, H, W)
    targets: torch.Tensor,  # (B, S, H, W) binary
    active: torch.Tensor,  # (B, S) bool
) -> torch.Tensor:
    """Mean per-pixel binary cross-entropy over the active slots (with or without an object).

    Why next to soft IoU: the soft-IoU gradient at a pixel is scaled by sigmoid'(logit), so a slot
    that has been pushed empty (probabilities ~0.01) barely moves when it is later matched to an
    object, and stays dead. The cross-entropy gradient at a logit is p - y, whatever the saturation.
    """
    if not active.any():
        return logits.new_zeros(())
    per_slot = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=(-2, -1))
    return per_slot[active].mean()


def slot_overlap_loss(probs: torch.Tensor) -> torch.Tensor:
    """(B, S, H, W) -> mean soft IoU between every pair of slots of a frame.

    Zero-shot only: nothing in soft IoU stops two slots from segmenting the same salient object (the
    later slot simply misses its own target). This term makes duplicates cost directly; objects do
    not overlap in the masks, so a correct prediction pays nothing.
    """
    slots = probs.shape[1]
    if slots < 2:
        return probs.new_zeros(())
    first, second = torch.triu_indices(slots, slots, offset=1, device=probs.device)
    a, b = probs[:, first], probs[:, second]  # (B, pairs, H, W)
    intersection = (a * b).sum(dim=(-2, -1))
    union = (a + b - a * b).sum(dim=(-2, -1))
    return (intersection / (union + _EPS)).mean()


def match_slots(
    probs: torch.Tensor,  # (S, H, W) predictions of one clip's first frame
    targets: torch.Tensor,  # (N, H, W) the N ground-truth objects of that frame
    all_slots: bool = False,
) -> list[int]:
    """Zero-shot: which slot predicts which object (Hungarian on 1 - soft IoU).

    Like the original, by default only the first N slots take part, so the model learns to fill
    slots in order and leave the rest empty; `all_slots` lets any slot take any object (the slots
    left over are then trained to be empty). Returns slot_for_object[n].
    """
    count = targets.shape[0]
    if count == 0:
        return []
    candidates = probs if all_slots else probs[:count]
    with torch.no_grad():
        cost = soft_iou_loss(candidates[:, None].float(), targets[None].float())  # (slot, object)
    slots, objects = linear_sum_assignment(cost.cpu().numpy())
    slot_for_object = [0] * count
    for slot, obj in zip(slots.tolist(), objects.tolist()):
        slot_for_object[obj] = slot
    return slot_for_object
