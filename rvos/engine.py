"""Engines: what runs the network for the `Segmenter` (PyTorch, or an exported ONNX model).

The Segmenter owns everything about a video (resizing, the given objects, thresholds, id maps); an
engine only turns tensors into tensors:
- `encode(images)`: (N, 3, H, W) float in [0, 1] -> the 4 skip features, coarsest first;
- `decode(features, slots, size, prev, state, references)`: one frame's slots -> (logits (1, slots, H, W),
  state), where `state` is the engine's own opaque recurrent state (None before a video's first frame)
  and `references` the given objects' references (`RVOS.references`, models with target_similarity);
- `feedback(probs)`: the previous-mask input of the next frame.
`load_engine` picks the engine from what a path is: a checkpoint file (PyTorch) or an export folder
(`rvos export`, ONNX).
"""

from pathlib import Path
from typing import Any, Protocol

import torch

from rvos.device import resolve_device
from rvos.model.checkpoint import load_model
from rvos.model.rvos import RVOS, ModelSpec


class Engine(Protocol):
    spec: ModelSpec
    device: torch.device

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]: ...

    def decode(
        self,
        features: list[torch.Tensor],
        num_slots: int,
        out_size: tuple[int, int],
        prev_masks: torch.Tensor | None,
        state: Any,
        references: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, Any]: ...

    def feedback(self, probs: torch.Tensor) -> torch.Tensor: ...


class TorchEngine:
    """The PyTorch model itself, in eval mode on its device."""

    def __init__(self, model: RVOS) -> None:
        self.model = model.eval()
        self.spec = model.spec
        self.device = next(model.parameters()).device

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.model.encode(images)

    def decode(
        self,
        features: list[torch.Tensor],
        num_slots: int,
        out_size: tuple[int, int],
        prev_masks: torch.Tensor | None,
        state: Any,
        references: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, Any]:
        return self.model.decode(features, num_slots, out_size, prev_masks, state, references)

    def feedback(self, probs: torch.Tensor) -> torch.Tensor:
        return self.model.feedback(probs)


def load_engine(path: str | Path, device: str | torch.device = "auto") -> tuple[Engine, dict]:
    """A checkpoint file or an `rvos export` folder -> (engine, metadata: spec, input_size, mode, info)."""
    path = Path(path)
    if path.is_dir():
        from rvos.onnx_engine import OnnxEngine  # onnxruntime is an optional extra

        engine = OnnxEngine(path)
        return engine, engine.meta
    model, checkpoint = load_model(path)
    model.to(resolve_device(device) if isinstance(device, str) else device)
    return TorchEngine(model), checkpoint
