"""`OnnxEngine`: run an `rvos export` folder with onnxruntime (the optional extra `.[onnx]`).

The folder holds `encoder.onnx` (images -> 4 skip features, any number of frames), `decoder.onnx`
(one frame: features, the slots' previous masks, their temporal ConvLSTM state and, with
target_similarity, the objects' references -> logits and the new state, all `max_objects` slots)
and `rvos-onnx.json` (the ModelSpec, input size, mode, info).
Decoding fewer slots is padding the masks with empty ones (and the references with zero ones) and
keeping the first logits: information only flows from lower to higher slots, and a zero reference is
similar to nothing, so the padded slots never change the others.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rvos.errors import RvosError
from rvos.model.rvos import RVOS, ModelSpec

FORMAT = "rvos-onnx"
VERSION = 1
META = "rvos-onnx.json"
ENCODER = "encoder.onnx"
DECODER = "decoder.onnx"
LEVELS = 4


def read_meta(folder: Path) -> dict:
    """The export's JSON, checked: one clear error naming the file and what is wrong."""
    path = folder / META
    if not path.is_file():
        raise RvosError(f"{folder}: not an rvos export ({META} not found; write one with rvos export)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RvosError(f"{path}: cannot read ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RvosError(f"{path}: not an rvos export (format is not {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise RvosError(f"{path}: export version {meta.get('version')!r}, this rvos reads {VERSION}")
    try:
        meta["spec_obj"] = ModelSpec(**meta["spec"])
        meta["input_size"] = [int(v) for v in meta["input_size"]]
        meta["levels"] = [[int(v) for v in shape] for shape in meta["levels"]]
    except (KeyError, TypeError, ValueError) as err:
        raise RvosError(f"{path}: bad or missing entry ({err})") from None
    for name in (ENCODER, DECODER):
        if not (folder / name).is_file():
            raise RvosError(f"{folder}: {name} not found (an incomplete export; run rvos export again)")
    return meta


class OnnxEngine:
    def __init__(self, folder: str | Path, threads: int = 0) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise RvosError("onnxruntime is not installed: pip install -e '.[onnx]'") from None
        folder = Path(folder)
        meta = read_meta(folder)
        self.spec: ModelSpec = meta.pop("spec_obj")
        self.meta = meta
        self.device = torch.device("cpu")
        self.levels = meta["levels"]  # per decoder level: (channels, h, w) of its temporal state
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # warnings about unused initializers are not the user's concern
        sessions = []
        for name in (ENCODER, DECODER):
            try:
                sessions.append(
                    onnxruntime.InferenceSession(
                        str(folder / name), options, providers=["CPUExecutionProvider"]
                    )
                )
            except Exception as err:  # noqa: BLE001 - onnxruntime raises its own many kinds
                raise RvosError(f"{folder / name}: cannot load ({str(err).splitlines()[0]})") from None
        self.encoder, self.decoder = sessions

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        outputs = self.encoder.run(None, {"images": images.cpu().numpy().astype(np.float32)})
        return [torch.from_numpy(x) for x in outputs]

    def decode(
        self,
        features: list[torch.Tensor],
        num_slots: int,
        out_size: tuple[int, int],
        prev_masks: torch.Tensor | None,
        state: Any,
        references: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, Any]:
        slots = self.spec.max_objects
        if tuple(out_size) != tuple(self.meta["input_size"]):
            raise RvosError(f"the export decodes at {self.meta['input_size']}, not {list(out_size)}")
        if state is None:  # a first frame: no temporal state is zeros, as in the PyTorch cell
            state = [np.zeros((slots, *shape), np.float32) for shape in self.levels]
        feeds = {f"feature{k}": f.numpy() for k, f in enumerate(features)}
        feeds |= {f"temporal{k}": h for k, h in enumerate(state)}
        if self.spec.takes_masks:
            prev = np.zeros((1, slots, *out_size), np.float32)
            prev[:, :num_slots] = prev_masks.cpu().numpy()
            feeds["prev_masks"] = prev
        if self.spec.target_similarity:  # padded with zero references: similar to nothing
            for k, reference in enumerate(references):
                padded = np.zeros((1, slots + 1, reference.shape[2]), np.float32)
                padded[:, : reference.shape[1]] = reference.cpu().numpy()
                feeds[f"reference{k}"] = padded
        logits, *state = self.decoder.run(None, feeds)
        return torch.from_numpy(logits[:, :num_slots]), state

    def feedback(self, probs: torch.Tensor) -> torch.Tensor:
        # The rule reads only `spec`, so the model's own method serves (one definition of it).
        return RVOS.feedback(self, probs)
