"""`rvos export`: a checkpoint -> ONNX graphs of the encoder and of one decoder step (see
rvos/onnx_engine.py for the folder's layout), written to a temporary folder renamed into place."""

import json
import logging
from pathlib import Path

import torch
from torch import nn

from rvos.atomic import atomic_dir
from rvos.model.checkpoint import load_model
from rvos.model.rvos import RVOS
from rvos.onnx_engine import DECODER, ENCODER, FORMAT, LEVELS, META, VERSION

log = logging.getLogger(__name__)
OPSET = 17


class EncoderGraph(nn.Module):
    def __init__(self, model: RVOS) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.encode(images))


class DecoderStepGraph(nn.Module):
    """One frame, all slots: (features x4, [prev_masks], temporal x4, [references x4]) -> (logits,
    temporal x4).

    The temporal state of level k is (slots, C_k, h_k, w_k): slot s's h from the previous frame; the
    references of level k (target_similarity) are (1, slots + 1, C_k), background first.
    """

    def __init__(self, model: RVOS, size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.size = size

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features, rest = list(inputs[:LEVELS]), list(inputs[LEVELS:])
        prev = rest.pop(0) if self.model.spec.takes_masks else None
        references = rest[LEVELS:] if self.model.spec.target_similarity else None
        slots = self.model.spec.max_objects
        temporal = [[level[s : s + 1] for level in rest[:LEVELS]] for s in range(slots)]
        logits, new = self.model.decode(features, slots, self.size, prev, temporal, references)
        return (logits, *[torch.cat([new[s][k] for s in range(slots)]) for k in range(LEVELS)])


def export_onnx(checkpoint_path: Path, out: Path) -> None:
    model, checkpoint = load_model(checkpoint_path)
    spec = model.spec
    size = tuple(checkpoint["input_size"])
    slots = spec.max_objects
    with torch.no_grad():
        images = torch.rand(1, 3, *size)
        features = model.encode(images)
        given = torch.zeros(1, slots, *size)
        given[:, :, size[0] // 4 : size[0] // 2, size[1] // 4 : size[1] // 2] = 1.0  # any non-empty masks
        references = model.references(features, given) if spec.target_similarity else []
        _, temporal = model.decode(
            features, 1, size, given[:, :1] if spec.takes_masks else None, None, references or None
        )
    levels = [list(h.shape[1:]) for h in temporal[0]]  # (C_k, h_k, w_k) per level
    state = [torch.zeros(slots, *shape) for shape in levels]
    feature_names = [f"feature{k}" for k in range(LEVELS)]
    temporal_names = [f"temporal{k}" for k in range(LEVELS)]
    reference_names = [f"reference{k}" for k in range(LEVELS)] if spec.target_similarity else []
    decoder_inputs = [*features, *([given] if spec.takes_masks else []), *state, *references]
    decoder_names = [*feature_names, *(["prev_masks"] if spec.takes_masks else []), *temporal_names]
    decoder_names += reference_names
    with atomic_dir(out) as tmp:
        torch.onnx.export(
            EncoderGraph(model).eval(),
            (images,),
            str(tmp / ENCODER),
            input_names=["images"],
            output_names=feature_names,
            dynamic_axes={"images": {0: "frames"}} | {name: {0: "frames"} for name in feature_names},
            opset_version=OPSET,
            dynamo=False,  # the torch.export path fails on the unrolled slot loop today
        )
        torch.onnx.export(
            DecoderStepGraph(model, size).eval(),
            tuple(decoder_inputs),
            str(tmp / DECODER),
            input_names=decoder_names,
            output_names=["logits", *[f"new_{name}" for name in temporal_names]],
            opset_version=OPSET,
            dynamo=False,  # the torch.export path fails on the unrolled slot loop today
        )
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "spec": spec.to_dict(),
            "input_size": list(size),
            "mode": checkpoint.get("mode", "one_shot" if spec.one_shot else "zero_shot"),
            "levels": levels,
            "info": checkpoint.get("info", {}),
            "source": str(checkpoint_path),
        }
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    log.info("exported %s -> %s (%s, %s)", checkpoint_path, out, ENCODER, DECODER)
