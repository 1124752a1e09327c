"""Resuming a killed training run from its last finished epoch, with the same final weights.

The state (model, optimizers, RNG, history, best checkpoint so far) lives outside DVC's outputs,
because DVC deletes those before re-running a stage, in a folder named after the run's identity.
"""

import hashlib
import json
import logging
from pathlib import Path

from rvos.config import Config, config_to_dict
from rvos.model.torch_files import load_torch, save_torch

log = logging.getLogger(__name__)


def resume_key(config: Config, split_files: list[Path], lmdb_file: Path) -> str:
    """Identity of a training run: the params that change the result + the data it reads."""
    params = {k: config_to_dict(config)[k] for k in ("mode", "seed", "model", "train", "index")}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for path in split_files:
        digest.update(path.read_bytes())
    digest.update(str(lmdb_file.stat().st_size).encode())
    return digest.hexdigest()[:16]


class ResumeState:
    """The last finished epoch of one run: `<folder>/last.pt`, tagged with the run's key."""

    def __init__(self, folder: Path, key: str) -> None:
        self.key = key
        self.folder = folder
        self.path = self.folder / "last.pt"

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        state = load_torch(self.path, "training state")
        if state.get("key") != self.key:
            return None
        log.info("resuming from %s (epoch %d finished)", self.path, state["epoch"])
        return state

    def save(self, state: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        save_torch(self.path, {**state, "key": self.key})

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
