"""Target similarity (`model.target_similarity`, one-shot): what each slot knows of its object's looks.

The original one-shot RVOS tells a slot where its object was (the previous mask) but not what it looks
like, apart from what the hidden state happens to keep. When two objects touch or cross, a slot then
follows whichever object is at the old place, and over a long video one slot takes over another
object's pixels (measured in docs/experiments.md: on the synthetic test, 35% of an object's visible
pixels went to another object's slot after frame 40, against 8% to the background).

So when an object is given (its annotated frame), its reference is the mean of that frame's skip
features under its mask, at each of the 4 decoder levels, and the background gets one too (the mean
outside every given object). On every later frame, slot s's ConvLSTM gates read two more maps per level:
- `own`: cosine similarity of each place's features to slot s's reference;
- `other`: the highest cosine similarity to any other reference (other objects and the background),
  and at least 0, so that a slot without an object (a zero reference, similar to nothing) never
  changes it: decoding fewer slots, or padding an ONNX export's slots, leaves the maps of the
  objects' slots as they are, as long as the slots left out hold no object.
No weights of their own: the references are averages of the encoder's features, and the similarity
maps are computed by the decoder step, so a PyTorch model and an ONNX export share this code.
"""

import torch
import torch.nn.functional as F

SIMILARITY_CHANNELS = 2  # own, other


def target_references(features: list[torch.Tensor], masks: torch.Tensor) -> list[torch.Tensor]:
    """The references of the objects in `masks`, from the features of the same frame.

    features: 4 x (N, C_k, h_k, w_k), coarsest first; masks: (N, S, H, W) in [0, 1], slot s's object.
    -> 4 x (N, S + 1, C_k) unit vectors: index 0 the background, index s + 1 slot s. A slot without
    an object (an empty mask) gets a zero vector, which is similar to nothing.
    """
    references = []
    for feature in features:
        # Area weights at the level's resolution: a feature cell counts by the share of it the object covers.
        weights = F.adaptive_avg_pool2d(masks.float(), feature.shape[-2:])  # (N, S, h, w)
        background = (1.0 - weights.sum(dim=1, keepdim=True)).clamp(min=0.0)
        weights = torch.cat([background, weights], dim=1)  # (N, S + 1, h, w)
        sums = torch.einsum("nshw,nchw->nsc", weights, feature.float())
        means = sums / weights.sum(dim=(2, 3))[..., None].clamp(min=1e-6)
        references.append(F.normalize(means, dim=2))
    return references


def prefer_references(
    preferred: list[torch.Tensor], fallback: list[torch.Tensor], present: torch.Tensor
) -> list[torch.Tensor]:
    """Per slot, `preferred`'s reference where its object is `present` (N, S) there, else `fallback`'s;
    the background always from `preferred`. (Training: the video's first frame, else the clip's.)"""
    keep = present[:, :, None]  # (N, S, 1)
    return [
        torch.cat([p[:, :1], torch.where(keep, p[:, 1:], f[:, 1:])], dim=1)
        for p, f in zip(preferred, fallback, strict=True)
    ]


def similarity_maps(features: list[torch.Tensor], references: list[torch.Tensor]) -> list[torch.Tensor]:
    """-> per level (N, S, 2, h_k, w_k): for each slot, its `own` and best `other` similarity map.

    features: 4 x (N, C_k, h_k, w_k); references: from `target_references`, 4 x (N, S + 1, C_k).
    """
    maps = []
    for feature, reference in zip(features, references, strict=True):
        cosine = torch.einsum("nchw,nsc->nshw", F.normalize(feature.float(), dim=1), reference)
        own = cosine[:, 1:]  # (N, S, h, w)
        slots = own.shape[1]
        # every reference but the slot's own: (N, S, S + 1, h, w), the own one set to 0 (the floor);
        # built from arange, not torch.eye, which onnxruntime lacks for booleans (EyeLike)
        index = torch.arange(slots + 1, device=cosine.device)
        is_own = (index[None, :] == index[1:, None])[None, :, :, None, None]  # (1, S, S + 1, 1, 1)
        others = cosine[:, None].expand(-1, slots, -1, -1, -1).masked_fill(is_own, 0.0)
        maps.append(torch.stack([own, others.amax(dim=2)], dim=2))
    return maps
