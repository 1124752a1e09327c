"""Model checkpoints: weights plus everything needed to use them (architecture, input size, mode).

A checkpoint is a plain dict of tensors, numbers and strings, so it loads with
`torch.load(..., weights_only=True)`: loading a file never runs code from it.

    {"format": "rvos-checkpoint", "version": 1, "spec": ModelSpec as dict, "input_size": [H, W],
     "mode": "one_shot" | "zero_shot", "model": state_dict, "info": {...free-form numbers/strings}}
"""

from pathlib import Path
from typing import Any

import torch

from rvos.errors import RvosError
from rvos.model.encoder import TRUNK_CHANNELS
from rvos.model.rvos import RVOS, ModelSpec
from rvos.model.torch_files import load_torch, save_torch, state_dict_problem

FORMAT = "rvos-checkpoint"
VERSION = 1
MODES = ("one_shot", "zero_shot")


def state_dict_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached CPU copies of the weights (a snapshot that later training steps do not change)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def model_payload(
    model: RVOS, input_size: tuple[int, int], mode: str, info: dict[str, Any] | None = None
) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "spec": model.spec.to_dict(),
        "input_size": list(input_size),
        "mode": mode,
        "model": state_dict_copy(model),
        "info": info or {},
    }


def save_model(
    path: str | Path, model: RVOS, input_size: tuple[int, int], mode: str, info: dict | None = None
) -> None:
    save_torch(path, model_payload(model, input_size, mode, info))


def _check_payload(payload: dict, name: str) -> None:
    """The entries every command reads besides the weights, each checked before it is used."""
    if payload.get("format") != FORMAT:
        raise RvosError(
            f"{name}: not an rvos checkpoint (convert original weights with rvos import-original)"
        )
    if payload.get("version") != VERSION:
        raise RvosError(f"{name}: checkpoint version {payload.get('version')!r}, this rvos reads {VERSION}")
    spec = payload.get("spec")
    if not isinstance(spec, dict):
        raise RvosError(f"{name}: checkpoint has no architecture ('spec' is missing or not a mapping)")
    if spec.get("encoder") not in TRUNK_CHANNELS:
        raise RvosError(
            f"{name}: unknown encoder {spec.get('encoder')!r} (known: {', '.join(TRUNK_CHANNELS)})"
        )
    size = payload.get("input_size")
    if not (
        isinstance(size, (list, tuple))
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise RvosError(f"{name}: input_size is {size!r}, expected [height, width] of positive integers")
    mode = payload.get("mode")
    if mode not in MODES:
        raise RvosError(f"{name}: mode is {mode!r}, expected one of {', '.join(MODES)}")
    if (mode == "one_shot") != bool(spec.get("one_shot", True)):
        raise RvosError(f"{name}: mode {mode} does not match the architecture (spec one_shot)")
    if not isinstance(payload.get("model"), dict):
        raise RvosError(f"{name}: checkpoint has no weights ('model' is missing or not a mapping)")


def model_from_payload(payload: dict, name: str) -> RVOS:
    _check_payload(payload, name)
    try:
        spec = ModelSpec(**payload["spec"])
        model = RVOS(spec)
        model.load_state_dict(payload["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise RvosError(
            f"{name}: checkpoint does not match its architecture ({state_dict_problem(err)})"
        ) from None
    return model


def load_model(path: str | Path) -> tuple[RVOS, dict]:
    """-> (model in eval mode on the CPU, payload without the weights)."""
    payload = load_torch(path)
    model = model_from_payload(payload, str(path)).eval()
    return model, {k: v for k, v in payload.items() if k != "model"}
