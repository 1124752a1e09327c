"""What one training step computes: per-slot targets, the forward pass over a batch of clips, the loss.

- Loss: per frame, the mean soft IoU over slots that hold an object plus the empty-slot term
  (rvos.losses), optionally per-pixel cross-entropy (`bce_weight`) and, zero-shot, a pairwise overlap
  term (`overlap_weight`), summed over the clip's frames: one backward pass per clip (full BPTT).
- One-shot: slot k is object k+1. With teacher forcing the model is fed the ground-truth mask of the
  previous frame, otherwise its own detached prediction (the original's "ST+" curriculum). With
  target similarity the objects' references come from the clip's first frame, or from the video's
  first annotated frame when the batch carries it (`train.reference_frame: video`, as inference has
  them; it scored lower on the synthetic test, docs/experiments.md).
- Zero-shot: slots are matched to the objects of each clip's first frame, and that matching is kept
  for the clip's later frames (`zero_shot_slot_ids`).
- Windows (`train.window_clips` > 1): consecutive clips of the same videos are trained one after the
  other, each with its own backward pass and optimizer step, the recurrent state and fed-back masks
  carried across the boundary (detached) and, zero-shot, the slot matching of the window's first
  frame kept. The model then trains on its own drift over a whole window, as inference meets it.
"""

from dataclasses import dataclass, field

import torch

from rvos.config import Config, TrainConfig
from rvos.losses import frame_loss, match_slots, pixel_bce_loss, slot_overlap_loss
from rvos.model.rvos import Carry, ModelSpec


def slot_targets(masks: torch.Tensor, slot_ids: torch.Tensor) -> torch.Tensor:
    """masks (B, T, H, W) ids, slot_ids (B, S) id per slot (0 = none) -> (B, T, S, H, W) binary."""
    targets = masks[:, :, None] == slot_ids[:, None, :, None, None]
    return (targets & (slot_ids[:, None, :, None, None] > 0)).float()


def one_shot_slot_ids(objects: torch.Tensor, num_slots: int) -> torch.Tensor:
    """objects (B, 256) flags of the ids in each video -> (B, S): slot k holds id k+1 if present."""
    ids = torch.arange(1, num_slots + 1, device=objects.device)
    return torch.where(objects[:, 1 : num_slots + 1], ids, torch.zeros_like(ids))


def zero_shot_slot_ids(
    first_probs: torch.Tensor,  # (B, S, H, W) predictions for each clip's first frame
    first_masks: torch.Tensor,  # (B, H, W) ids of each clip's first frame
    num_slots: int,
    matching: str,
) -> torch.Tensor:
    """Which object each slot is trained on, decided on the clip's first frame -> (B, S) ids.

    `first_slots` / `all_slots`: Hungarian matching of the predictions to the objects, over the first
    N slots (the original) or over every slot. `reading_order`: no matching; slot k gets the k-th object
    in reading order of its topmost pixel (then leftmost), a target the model can compute from the
    image, so a slot is never trained towards an object it had no way to single out.
    """
    slot_ids = torch.zeros(first_masks.shape[0], num_slots, dtype=torch.long, device=first_masks.device)
    for b in range(first_masks.shape[0]):
        ids = [int(i) for i in torch.unique(first_masks[b]) if i > 0]
        if not ids:
            continue
        objects = torch.stack([first_masks[b] == i for i in ids])
        if matching == "reading_order":
            first_pixel = [int(obj.flatten().nonzero()[0]) for obj in objects]  # row-major: top, then left
            ordered = [i for _, i in sorted(zip(first_pixel, ids))][:num_slots]
            slot_ids[b, : len(ordered)] = torch.tensor(ordered)
            continue
        ids, objects = ids[:num_slots], objects[:num_slots]
        for obj, slot in enumerate(match_slots(first_probs[b], objects, matching == "all_slots")):
            slot_ids[b, slot] = ids[obj]
    return slot_ids


@dataclass(frozen=True)
class ClipPolicy:
    """How clips are fed and scored in one epoch (training) or in validation."""

    empty_weight: float
    overlap_weight: float = 0.0  # zero-shot: cost of two slots covering the same pixels
    bce_weight: float = 0.0  # per-pixel cross-entropy next to soft IoU
    zero_shot_matching: str = "first_slots"  # which slot is trained on which object (zero_shot_slot_ids)
    teacher_forcing: bool = False  # one-shot: ground-truth previous masks instead of predictions


@dataclass
class Window:
    """What one clip hands to the next clip of the same videos when a window of consecutive clips is
    trained in sequence (truncated BPTT, `train.window_clips`)."""

    carry: Carry = field(default_factory=Carry)  # the model's recurrent state and mask input
    slot_ids: torch.Tensor | None = None  # (B, S) zero-shot: fixed on the window's first frame


def takes_video_references(config: Config) -> bool:
    """Whether training clips bring their video's first frame for the objects' references."""
    one_shot_similarity = config.mode == "one_shot" and config.model.target_similarity
    return one_shot_similarity and config.train.reference_frame == "video"


def num_slots_for(batch: dict, spec: ModelSpec) -> int:
    """One-shot decodes only up to the highest object id in the batch; zero-shot needs every slot."""
    if not spec.one_shot:
        return spec.max_objects
    present = batch["objects"][:, 1 : spec.max_objects + 1].any(dim=0).nonzero()
    return int(present.max()) + 1 if len(present) else 1


def run_clips(
    model: torch.nn.Module,
    spec: ModelSpec,
    batch: dict,
    device: torch.device,
    policy: ClipPolicy,
    window: Window | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward a batch of clips -> (loss, probs (B,T,S,H,W), targets, active (B,S)).

    With `window` the clips continue the previous clips of the same videos (state carried in and
    out); without it each clip starts afresh from its first frame, as in the original.
    """
    carry = window.carry if window is not None else None
    images = batch["images"].to(device, non_blocking=True).float() / 255.0
    masks = batch["masks"].to(device, non_blocking=True).long()
    num_slots = num_slots_for(batch, spec)
    if spec.one_shot:
        slot_ids = one_shot_slot_ids(batch["objects"].to(device), num_slots)
        targets = slot_targets(masks, slot_ids)
        reference_images = reference_masks = None
        if "reference_image" in batch:  # the video's first frame (train.reference_frame: video)
            reference_images = batch["reference_image"].to(device, non_blocking=True).float() / 255.0
            reference_ids = batch["reference_mask"].to(device, non_blocking=True).long()[:, None]
            reference_masks = slot_targets(reference_ids, slot_ids)[:, 0]
        logits = model(
            images, num_slots, targets, policy.teacher_forcing, carry, reference_images, reference_masks
        )
        active = slot_ids > 0
    else:
        logits = model(images, num_slots, carry=carry)
        if window is not None and window.slot_ids is not None:
            slot_ids = window.slot_ids  # a slot keeps its object for the whole window
        else:
            slot_ids = zero_shot_slot_ids(
                torch.sigmoid(logits[:, 0].float()), masks[:, 0], num_slots, policy.zero_shot_matching
            )
        if window is not None:
            window.slot_ids = slot_ids
        targets = slot_targets(masks, slot_ids)
        active = torch.ones_like(slot_ids, dtype=torch.bool)
    probs = torch.sigmoid(logits.float())
    frames = range(probs.shape[1])
    loss = sum(frame_loss(probs[:, t], targets[:, t], active, policy.empty_weight) for t in frames)
    if policy.bce_weight > 0:
        loss = loss + policy.bce_weight * sum(
            pixel_bce_loss(logits[:, t].float(), targets[:, t], active) for t in frames
        )
    if not spec.one_shot and policy.overlap_weight > 0:
        loss = loss + policy.overlap_weight * sum(slot_overlap_loss(probs[:, t]) for t in frames)
    return loss, probs, targets, active


def mean_iou(probs: torch.Tensor, targets: torch.Tensor, active: torch.Tensor) -> tuple[float, int]:
    """Sum of thresholded IoUs over (clip, frame, slot) with an object, and their count."""
    pred = probs > 0.5
    truth = targets > 0.5
    inter = (pred & truth).flatten(3).sum(-1).float()
    union = (pred | truth).flatten(3).sum(-1).float()
    scored = active[:, None, :] & (truth.flatten(3).any(-1))
    return float((inter / union.clamp(min=1))[scored].sum()), int(scored.sum())


def epoch_policy(train: TrainConfig, epoch: int) -> ClipPolicy:
    """The loss settings of `train`, with teacher forcing for the first `teacher_forcing_epochs`."""
    return ClipPolicy(
        train.empty_weight,
        train.overlap_weight,
        train.bce_weight,
        train.zero_shot_matching,
        teacher_forcing=epoch < train.teacher_forcing_epochs,
    )
