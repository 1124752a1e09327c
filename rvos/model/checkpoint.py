"""Model checkpoints: weights plus everything needed to use them (architecture, input size, mode).

A checkpoint is a plain dict of tensors, numbers and strings, so it loads with
`torch.load(..., weights_only=True)`: loading a file never runs code from it.

    {"format": "rvos-checkpoint", "version": 1, "spec": ModelSpec as dict, "input_size": [H, W],
     "mode": "one_shot" | "zero_shot", "model": state_dict, "info": {...free-form numbers/strings}}
"""

import io
from pathlib import Path
from typing import Any

import torch

from rvos.atomic import write_bytes_atomic
from rvos.errors import RvosError
from rvos.model.rvos import RVOS, ModelSpec

FORMAT = "rvos-checkpoint"
VERSION = 1


def save_torch(path: str | Path, payload: dict) -> None:
    """`torch.save` to a temporary file renamed into place (never a half-written checkpoint)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_torch(path: str | Path, what: str = "checkpoint") -> dict:
    path = Path(path)
    if not path.is_file():
        raise RvosError(f"{path}: {what} not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to unpickle means an unusable file
        raise RvosError(f"{path}: cannot load {what} ({str(err).splitlines()[0]})") from None
    if not isinstance(payload, dict):
        raise RvosError(f"{path}: not a {what} (a {type(payload).__name__}, expected a dict)")
    return payload


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


def model_from_payload(payload: dict, name: str) -> RVOS:
    if payload.get("format") != FORMAT:
        raise RvosError(
            f"{name}: not an rvos checkpoint (convert original weights with rvos import-original)"
        )
    try:
        spec = ModelSpec(**payload["spec"])
        model = RVOS(spec)
        model.load_state_dict(payload["model"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise RvosError(
            f"{name}: checkpoint does not match its architecture ({str(err).splitlines()[0]})"
        ) from None
    return model


def load_model(path: str | Path) -> tuple[RVOS, dict]:
    """-> (model in eval mode on the CPU, payload without the weights)."""
    payload = load_torch(path)
    model = model_from_payload(payload, str(path)).eval()
    return model, {k: v for k, v in payload.items() if k != "model"}
