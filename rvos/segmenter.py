"""`Segmenter`: RVOS online, one frame in, that frame's id map out (`from rvos import Segmenter`).

    seg = Segmenter.from_checkpoint("models/rvos.pt")
    for t, frame in enumerate(frames):  # (H, W, 3) uint8 RGB, any size, in temporal order
        ids = seg.step(frame, new_objects=first_mask if t == 0 else None)  # (H, W) uint8, 0 = background

The `infer` stage and `rvos demo` both run it. It keeps only the recurrent state of the slots (the
ConvLSTM hidden maps and the fed-back masks at the model's input size, about 1 MB for the default
model), never an earlier frame, so memory does not grow with the video's length.

- Frames are resized to the checkpoint's input size (area interpolation, as the `index` stage does);
  id maps come back at the frame's own resolution, or at `out_size` when the frame is already small
  (the `infer` stage feeds the index's pre-resized frames and wants the original resolution).
- One-shot: `new_objects` is an id map (at the id maps' resolution) holding objects that start on
  this frame. Ids already being tracked are ignored (a DAVIS / YouTube-VOS annotation of a later
  frame repeats the earlier objects); each new object is reported from this frame on and is 0 before.
  `slots` (default: all the model's) is how many slots are decoded; the highest id you will give is
  enough and saves time. Information only flows from lower to higher slots, so `slots` never changes
  an object's result.
- Zero-shot: no `new_objects`; proposals are chosen online (`rvos.inference`: a slot becomes a
  proposal on the first frame it covers `infer.min_area_fraction`) and split into tracked regions
  (`rvos.components`), both without look-ahead.
- The network runs in an engine (rvos/engine.py): the PyTorch model, or an `rvos export` folder run
  with onnxruntime; `from_checkpoint` takes either.
- `run(items)` is `step` over (frame, new_objects) pairs, encoding up to `batch` frames at once, which
  is faster (above all on a GPU); the batch is its only look-ahead. Its results equal `step`'s up to
  the encoder's float rounding (the batch size changes how its convolutions sum, by about 1e-5),
  which can move a pixel that lies exactly on a threshold. The `infer` stage uses `run` with batches
  of 16, as the pipeline always has, so its predictions did not change when it became online.
"""

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from rvos.config import InferConfig, build_section
from rvos.data.videos import object_ids, resize_frame, resize_mask
from rvos.engine import Engine, TorchEngine, load_engine
from rvos.errors import RvosError
from rvos.inference import ZeroShotMaps, frame_id_map, paste_given
from rvos.model.rvos import RVOS

ENCODER_BATCH = 16  # frames encoded at once by `run`


def checkpoint_infer(checkpoint: dict) -> InferConfig | None:
    """The inference settings a checkpoint carries (`info.infer`), if any."""
    stored = checkpoint.get("info", {}).get("infer")
    return None if stored is None else build_section(InferConfig, stored, "infer (checkpoint)")


def slots_for(model: RVOS, object_ids: list[int]) -> int | None:
    """One-shot: decode slots up to the highest id of the video (more would give the same masks,
    slower); zero-shot: None, all of them."""
    if not model.spec.one_shot:
        return None
    return min(max(object_ids, default=1), model.spec.max_objects)


class Segmenter:
    def __init__(
        self,
        model: RVOS | Engine,
        input_size: tuple[int, int],
        infer: InferConfig | None = None,
        slots: int | None = None,
    ) -> None:
        self.engine = TorchEngine(model) if isinstance(model, RVOS) else model
        spec = self.engine.spec
        if slots is not None and not 1 <= slots <= spec.max_objects:
            raise RvosError(f"slots = {slots}: the model has slots 1..{spec.max_objects} (model.max_objects)")
        self.spec = spec
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.infer = infer if infer is not None else InferConfig()
        self.one_shot = spec.one_shot
        self.slots = slots if slots is not None and spec.one_shot else spec.max_objects
        self.device = self.engine.device
        self.seconds = 0.0  # spent segmenting, over the Segmenter's life (frames/s without start-up)
        self.reset()

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "auto",
        infer: InferConfig | None = None,
        slots: int | None = None,
    ) -> "Segmenter":
        """Load any rvos checkpoint or `rvos export` folder; `infer` defaults to the settings it carries,
        else the defaults."""
        engine, checkpoint = load_engine(path, device)
        return cls(engine, checkpoint["input_size"], infer or checkpoint_infer(checkpoint), slots)

    def reset(self) -> None:
        """Forget the video: the next frame is a first frame."""
        height, width = self.input_size
        self._temporal = None  # the engine's recurrent state (PyTorch: per slot, per level, h)
        # (1, slots, h, w) each slot's previous mask, the decoder's mask input (if the model reads one)
        self._prev = None
        if self.spec.takes_masks:
            self._prev = torch.zeros(1, self.slots, height, width, device=self.device)
        self._started = torch.zeros(self.slots, dtype=torch.bool)  # one-shot: slot's object given
        # target_similarity: 4 x (1, slots + 1, C_k) the given objects' references, background first
        self._references: list[torch.Tensor] | None = None
        self.objects: list[int] = []  # one-shot: ids given so far
        self._zero_shot = None if self.one_shot else ZeroShotMaps(self.slots, self.infer)
        self.probs: torch.Tensor | None = None  # (slots, h, w) float16: the last frame's, at input size

    def step(
        self,
        frame: np.ndarray,
        new_objects: np.ndarray | None = None,
        out_size: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame -> (H, W) uint8 id map (or at `out_size`), 0 = background."""
        return self._segment([frame], [new_objects], out_size)[0]

    def run(
        self,
        items: Iterable[tuple[np.ndarray, np.ndarray | None]],
        out_size: tuple[int, int] | None = None,
        batch: int = ENCODER_BATCH,
    ) -> Iterator[np.ndarray]:
        """`step` over (frame, new_objects) pairs, read lazily, `batch` frames encoded at once."""
        frames: list[np.ndarray] = []
        given: list[np.ndarray | None] = []
        for frame, new_objects in items:
            frames.append(frame)
            given.append(new_objects)
            if len(frames) == batch:
                maps = self._segment(frames, given, out_size)
                frames, given = [], []
                yield from maps
        if frames:
            yield from self._segment(frames, given, out_size)

    @torch.no_grad()
    def _segment(
        self, frames: list[np.ndarray], given: list[np.ndarray | None], out_size: tuple[int, int] | None
    ) -> list[np.ndarray]:
        start = time.perf_counter()
        height, width = self.input_size
        small = np.stack([self._model_input(frame) for frame in frames])  # (N, h, w, 3) uint8
        images = torch.from_numpy(small).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        features = self.engine.encode(images)  # 4 x (N, C_k, h_k, w_k)
        if self.spec.target_similarity and self._references is None:  # similar to nothing yet
            shapes = [(1, self.slots + 1, f.shape[1]) for f in features]  # background, then each slot
            self._references = [torch.zeros(shape, device=self.device) for shape in shapes]
        maps = []
        for i, (frame, new_objects) in enumerate(zip(frames, given)):
            size = tuple(out_size) if out_size is not None else frame.shape[:2]
            frame_features = [f[i : i + 1] for f in features]
            new, full = self._start_objects(new_objects, size) if new_objects is not None else ([], None)
            if new and self.spec.target_similarity:
                self._add_references(frame_features, new, new_objects)
            logits, self._temporal = self.engine.decode(
                frame_features, self.slots, (height, width), self._prev, self._temporal, self._references
            )
            probs = torch.sigmoid(logits.float())  # (1, slots, h, w)
            if self.one_shot:
                for obj in new:
                    probs[0, obj - 1] = self._prev[0, obj - 1]  # a given object's mask is the annotation
                probs[0, ~self._started.to(self.device)] = 0.0  # objects not given yet
            if self._prev is not None:
                self._prev = self._feedback(probs)
            half = self.probs = probs[0].half().cpu()  # (slots, h, w)
            if self.one_shot:
                slot_ids = [k + 1 if started else 0 for k, started in enumerate(self._started.tolist())]
                ids = frame_id_map(half, slot_ids, size, self.infer.mask_threshold)
                if new:
                    paste_given(ids, full, new)
            else:
                ids = self._zero_shot(half, size)
            maps.append(ids)
        self.seconds += time.perf_counter() - start
        return maps

    def _feedback(self, probs: torch.Tensor) -> torch.Tensor:
        """(1, slots, h, w) probabilities -> the next frame's mask input.

        One-shot slots trained with binarized feedback get it binarized at `infer.feedback_threshold`,
        lower than training's: a generous mask keeps an object that the slot grew unsure of (shrinking,
        half hidden, at the border) instead of letting it erode away (docs/experiments.md). Zero-shot
        and soft-feedback models feed back as in training (`engine.feedback`)."""
        if self.one_shot and self.spec.feedback_threshold > 0:
            return (probs > self.infer.feedback_threshold).to(probs.dtype)
        return self.engine.feedback(probs)

    def _model_input(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        if frame.shape[:2] == self.input_size:
            return frame
        return resize_frame(frame, *self.input_size)

    def _add_references(self, features: list[torch.Tensor], new: list[int], annotation: np.ndarray) -> None:
        """The references of the objects starting on this frame, from its features and annotation;
        the background's from the first annotation (outside every object it gives)."""
        small = annotation
        if annotation.shape != self.input_size:
            small = resize_mask(annotation, *self.input_size)
        ids = torch.from_numpy(small.astype(np.int64)).to(self.device)
        masks = (ids[None] == torch.arange(1, self.slots + 1, device=self.device)[:, None, None]).float()
        references = RVOS.references(features, masks[None])  # 4 x (1, slots + 1, C_k)
        first = len(self.objects) == len(new)  # no object was given before this frame
        for mine, level in zip(self._references, references):
            for obj in new:
                mine[:, obj] = level[:, obj]
            if first:
                mine[:, 0] = level[:, 0]

    def _start_objects(self, new_objects: np.ndarray, size: tuple[int, int]) -> tuple[list[int], np.ndarray]:
        """Write the objects that start on this frame into their slots' mask input.

        -> (their ids, the annotation of just them at the id maps' resolution)."""
        if not self.one_shot:
            raise RvosError("zero-shot model: it takes no annotation (use a one-shot checkpoint)")
        if new_objects.shape != size:
            raise RvosError(
                f"annotation is {new_objects.shape[0]}x{new_objects.shape[1]} but the id maps are "
                f"{size[0]}x{size[1]}"
            )
        new = [obj for obj in object_ids(new_objects) if obj not in self.objects]
        limit = self.spec.max_objects
        if new and new[-1] > limit:
            raise RvosError(f"object id {new[-1]} is above the model's {limit} slots (model.max_objects)")
        if new and new[-1] > self.slots:
            raise RvosError(
                f"object id {new[-1]} is above the {self.slots} slots this Segmenter decodes (slots)"
            )
        full = np.where(np.isin(new_objects, new), new_objects, 0).astype(np.uint8)
        small = full if size == self.input_size else resize_mask(full, *self.input_size)
        for obj in new:
            self._prev[0, obj - 1] = torch.from_numpy(small == obj).to(self.device).float()
            self._started[obj - 1] = True
        self.objects += new
        return new, full
