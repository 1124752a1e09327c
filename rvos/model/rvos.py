"""RVOS: encoder once per frame, recurrent decoder once per object slot (spec section 0 and 1).

Two recurrences:
- spatial: slot s-1 -> slot s within a frame (full (h, c) per level), so slots are decoded in order;
- temporal: frame f-1 -> frame f for the same slot (h per level, as an extra gate input).
The one-shot variant also feeds each slot its mask from the previous frame, max-pooled to every
decoder level. The original zero-shot variant has no mask input; with `zero_shot_mask_input` its
slots get their own previous-frame prediction the same way (an empty mask on the first frame), so a
slot keeps the object it found instead of relying on the hidden state alone. With `zero_shot_canvas`
each zero-shot slot also reads a canvas: the union of what the slots before it in the same frame
segmented, so that "find an object that is not taken yet" is an input, not something the spatial
cell state has to learn to encode. With `target_similarity` (one-shot) each slot also reads, per
level, how alike each place is to its object's features in the frame the object was given, and to the
other objects and the background (rvos.model.target): an appearance cue that keeps a slot on its own
object when objects meet.
"""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rvos.config import ModelConfig
from rvos.model.decoder import LevelStates, RecurrentDecoder, upsample
from rvos.model.encoder import IMAGENET_MEAN, IMAGENET_STD, TRUNK_CHANNELS, ResNetTrunk, SkipReductions
from rvos.model.target import SIMILARITY_CHANNELS, prefer_references, similarity_maps, target_references

TemporalState = list[list[torch.Tensor]]  # [slot][level] -> h of that slot in the previous frame


@dataclass
class Carry:
    """The recurrent state handed from a clip to the next clip of the same videos (truncated BPTT).

    Empty (None) before a video's first clip. `forward` reads it and writes the state after the
    clip's last frame back, detached, so gradients stop at the clip boundary but the model keeps
    seeing its own drift.
    """

    temporal: TemporalState | None = None
    prev: torch.Tensor | None = None  # (B, S, H, W) the mask input of the next frame, if spec.takes_masks
    references: list[torch.Tensor] | None = None  # spec.target_similarity: the objects' references


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    encoder: str = "resnet18"
    hidden_size: int = 64
    kernel_size: int = 3
    max_objects: int = 5
    one_shot: bool = True
    dropout: float = 0.0
    feedback_threshold: float = 0.0  # 0: soft masks fed back (the original; checkpoints without it)
    zero_shot_mask_input: bool = False  # False: the original zero-shot decoder, no mask input
    zero_shot_canvas: bool = False  # zero-shot slots read the union of the earlier slots' masks
    target_similarity: bool = False  # one-shot slots read similarity maps to their given object

    @property
    def takes_masks(self) -> bool:
        """Whether each slot's ConvLSTM gates read a previous-frame mask."""
        return self.one_shot or self.zero_shot_mask_input

    @property
    def mask_channels(self) -> int:
        """Maps each ConvLSTM gate convolution reads besides features and states: previous-frame mask,
        then canvas, then the two similarity maps."""
        similarity = SIMILARITY_CHANNELS if self.target_similarity else 0
        return int(self.takes_masks) + int(self.zero_shot_canvas) + similarity

    @classmethod
    def from_config(cls, model: ModelConfig, mode: str) -> "ModelSpec":
        return cls(
            encoder=model.encoder,
            hidden_size=model.hidden_size,
            kernel_size=model.kernel_size,
            max_objects=model.max_objects,
            one_shot=mode == "one_shot",
            dropout=model.dropout,
            feedback_threshold=model.feedback_threshold,
            zero_shot_mask_input=mode == "zero_shot" and model.zero_shot_mask_input,
            zero_shot_canvas=mode == "zero_shot" and model.zero_shot_canvas,
            target_similarity=mode == "one_shot" and model.target_similarity,
        )

    def to_dict(self) -> dict:
        return asdict(self)


PAPER_SPEC = {"encoder": "resnet101", "hidden_size": 128, "kernel_size": 3, "max_objects": 10}


def mask_pyramid(masks: torch.Tensor) -> list[torch.Tensor]:
    """(N, S, H, W) soft masks -> 4 maps (N, S, h_k, w_k) at strides 32, 16, 8, 4 (coarsest first).

    Pooled with ceil_mode like the ResNet's own downsampling, so the sizes match the skip features.
    """
    x = F.max_pool2d(masks, 2, ceil_mode=True)  # stride 2
    levels = []
    for _ in range(4):
        x = F.max_pool2d(x, 2, ceil_mode=True)
        levels.append(x)
    return levels[::-1]


class RVOS(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = ResNetTrunk(spec.encoder)
        self.skips = SkipReductions(TRUNK_CHANNELS[spec.encoder], spec.hidden_size, spec.kernel_size)
        self.decoder = RecurrentDecoder(spec.hidden_size, spec.kernel_size, spec.mask_channels, spec.dropout)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def feedback(self, probs: torch.Tensor) -> torch.Tensor:
        """(N, S, H, W) probabilities of frame t -> the previous-mask input of frame t+1.

        The original feeds the soft probabilities back. A model that is slightly unsure at an
        object's border then sees a fainter mask each frame, and over a long video the object
        erodes away; a mask binarized at a low threshold keeps the whole object.
        """
        if self.spec.feedback_threshold > 0:
            return (probs > self.spec.feedback_threshold).to(probs.dtype)
        return probs

    @staticmethod
    def references(features: list[torch.Tensor], masks: torch.Tensor) -> list[torch.Tensor]:
        """The given objects' references (rvos.model.target) from one frame's features and masks."""
        return target_references(features, masks)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Decoder and skip reductions: the original optimises both with the decoder's optimizer."""
        return list(self.skips.parameters()) + list(self.decoder.parameters())

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images (N, 3, H, W) in [0, 1] -> 4 skip features, coarsest first."""
        return self.skips(self.encoder((images - self.mean) / self.std))

    def decode(
        self,
        features: list[torch.Tensor],  # from encode(), batch N
        num_slots: int,
        out_size: tuple[int, int],
        prev_masks: torch.Tensor | None = None,  # (N, num_slots, H, W) masks, if spec.takes_masks
        temporal: TemporalState | None = None,  # from the previous frame; None on a clip's first frame
        references: list[torch.Tensor] | None = None,  # 4 x (N, >= num_slots + 1, C_k), if target_similarity
    ) -> tuple[torch.Tensor, TemporalState]:
        """Decode slots 0..num_slots-1 of one frame -> logits (N, num_slots, H, W) and the new state.

        Decoding fewer slots than max_objects gives the same logits for those slots, because
        information only flows from lower to higher slot indices (with target_similarity: as long
        as the slots left out hold no object, whose reference would enter the `other` map).
        """
        if self.spec.takes_masks and prev_masks is None:
            raise ValueError("this model needs the previous masks")
        similarity = None  # per level (N, S, 2, h_k, w_k)
        if self.spec.target_similarity:
            if references is None:
                raise ValueError("this model needs the given objects' references (RVOS.references)")
            similarity = similarity_maps(features, [r[:, : num_slots + 1] for r in references])
        canvas = None  # (N, 1, H, W) union of the earlier slots' fed-back masks
        if self.spec.zero_shot_canvas:
            canvas = features[0].new_zeros(features[0].shape[0], 1, *out_size, dtype=torch.float32)
        # What every slot reads is pooled once per frame, all slots together (max-pooling keeps
        # channels apart): 4 x (N, S, h_k, w_k). Only the canvas changes from slot to slot.
        prev_levels = mask_pyramid(prev_masks[:, :num_slots]) if self.spec.takes_masks else None
        spatial: LevelStates | None = None
        logits, new_temporal = [], []
        for slot in range(num_slots):
            # per level (N, mask_channels, h_k, w_k): previous mask, canvas, own and other similarity
            levels: list[list[torch.Tensor]] = [[] for _ in range(4)]
            if prev_levels is not None:
                levels = [parts + [m[:, slot : slot + 1]] for parts, m in zip(levels, prev_levels)]
            if canvas is not None:
                levels = [parts + [m] for parts, m in zip(levels, mask_pyramid(canvas))]
            if similarity is not None:
                levels = [parts + [m[:, slot]] for parts, m in zip(levels, similarity)]
            masks = [torch.cat(parts, dim=1) for parts in levels] if self.spec.mask_channels else None
            slot_logits, spatial = self.decoder(
                features, masks, spatial, temporal[slot] if temporal is not None else None
            )
            slot_logits = upsample(slot_logits, out_size)  # (N, 1, H, W)
            logits.append(slot_logits)
            new_temporal.append([h for h, _ in spatial])
            if canvas is not None:  # detached, like the fed-back masks
                canvas = torch.maximum(canvas, self.feedback(torch.sigmoid(slot_logits.detach().float())))
        return torch.cat(logits, dim=1), new_temporal

    def forward(
        self,
        images: torch.Tensor,  # (B, T, 3, H, W) in [0, 1]
        num_slots: int,
        given_masks: torch.Tensor | None = None,  # (B, T, S, H, W) ground truth, one-shot only
        teacher_forcing: bool = True,
        carry: Carry | None = None,  # in/out: the state from the previous clip of the same videos
        reference_images: torch.Tensor | None = None,  # (B, 3, H, W) the videos' first annotated frames
        reference_masks: torch.Tensor | None = None,  # (B, S, H, W) their ground truth per slot
    ) -> torch.Tensor:
        """Run a whole clip with backpropagation through time -> logits (B, T, num_slots, H, W).

        One-shot input masks follow the original training: frame 0 receives its own ground truth;
        frame t > 0 receives the ground truth of frame t-1 (teacher forcing) or the detached
        sigmoid of its own prediction for frame t-1, through `feedback` (the "ST+" curriculum and
        validation). A zero-shot model with mask input gets an empty mask on frame 0 and its own
        prediction after that. With a non-empty `carry` the clip continues the previous one: its
        first frame gets the carried temporal state and mask input instead. With `target_similarity`
        the objects' references come from the clip's first frame and its ground truth (or the carry),
        or, given `reference_images`, from those (the video's first frame, as inference has them) for
        every object present there. The encoder runs once on all B*T (+ B reference) frames.
        """
        B, T = images.shape[:2]
        size = (images.shape[-2], images.shape[-1])
        frames = images.flatten(0, 1)
        if reference_images is not None:
            frames = torch.cat([frames, reference_images])
        encoded = self.encode(frames)
        features = [f[: B * T].unflatten(0, (B, T)) for f in encoded]
        temporal, outputs = None, []
        prev = references = None
        if carry is not None and carry.temporal is not None:
            temporal, prev, references = carry.temporal, carry.prev, carry.references
        elif self.spec.one_shot:
            prev = given_masks[:, 0]
            if self.spec.target_similarity:  # the objects are given on the clip's first frame
                references = self.references([f[:, 0] for f in features], given_masks[:, 0])
                if reference_images is not None:
                    present = reference_masks.flatten(2).any(dim=2)  # (B, S)
                    from_video = self.references([f[B * T :] for f in encoded], reference_masks)
                    references = prefer_references(from_video, references, present)
        elif self.spec.takes_masks:
            prev = images.new_zeros(B, num_slots, *size)  # zero-shot: nothing found yet
        for t in range(T):
            frame_features = [f[:, t] for f in features]
            logits, temporal = self.decode(frame_features, num_slots, size, prev, temporal, references)
            outputs.append(logits)
            if self.spec.one_shot and teacher_forcing:
                prev = given_masks[:, t]
            elif self.spec.takes_masks:
                prev = self.feedback(torch.sigmoid(logits).detach())
        if carry is not None:
            carry.temporal = [[h.detach() for h in levels] for levels in temporal]
            carry.prev = prev.detach() if prev is not None else None
            carry.references = [r.detach() for r in references] if references is not None else None
        return torch.stack(outputs, dim=1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
