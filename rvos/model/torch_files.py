"""Reading and writing torch files safely: every load is `weights_only=True` (a file never runs
code), every save goes to a temporary file renamed into place, and every failure is one line that
names the file. Checkpoints, training states, ImageNet and original weights all come through here.
"""

import io
import pickle
import re
from pathlib import Path

import torch

from rvos.atomic import write_bytes_atomic
from rvos.errors import RvosError


def save_torch(path: str | Path, payload: dict) -> None:
    """`torch.save` to a temporary file renamed into place (never a half-written checkpoint)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type when the message is empty."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def state_dict_problem(err: BaseException) -> str:
    """The first specific complaint of `load_state_dict` (its first line only says "Error(s) in
    loading state_dict for X:"; the lines after it list every mismatched tensor)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else first_line(err)


def unpickling_problem(err: pickle.UnpicklingError, what: str) -> str:
    """What torch's weights-only unpickler refused, in our words: its message advises turning
    weights_only off, which would run code from the file, and a checkpoint never needs that."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    if found:
        return (
            f"{what} holds a pickled Python object ({found.group(1)}), not only tensors, numbers and "
            "strings; refused, because loading it would run code from the file"
        )
    detail = re.search(r"WeightsUnpickler error: \s*(\S[^\n]*)", str(err))
    reason = detail.group(1) if detail else "unreadable"
    return f"cannot load {what} (not a torch.save file, or damaged: {reason})"


def load_torch(path: str | Path, what: str = "checkpoint") -> dict:
    path = Path(path)
    if not path.is_file():
        raise RvosError(f"{path}: {what} not found")
    if path.stat().st_size == 0:
        raise RvosError(f"{path}: {what} is an empty file (0 bytes)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise RvosError(f"{path}: {unpickling_problem(err, what)}") from None
    except Exception as err:  # noqa: BLE001 - any other failure to read it means an unusable file
        raise RvosError(f"{path}: cannot load {what} ({first_line(err)})") from None
    if not isinstance(payload, dict):
        raise RvosError(f"{path}: not a {what} (a {type(payload).__name__}, expected a dict)")
    return payload
