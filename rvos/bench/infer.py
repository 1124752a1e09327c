"""`rvos bench infer`: frames/s of this project's online inference, settings and engines side by side.

One synthetic clip (three ellipses drifting over a gradient, the first frame's mask given: one-shot),
one model (the ResNet-101 paper preset with random weights, or `checkpoint`), every variant run on the
same clip in the same process, in turn, `repeats` times (median frames/s), so that the ratios hold on
a shared, noisy machine. Frames/s is over the segmentation only (`Segmenter.seconds`), not start-up.
Each variant's id maps are compared with the default's (PyTorch fp32): on all pixels, and on the pixels
that the default decides confidently (its winning probability >= 0.9 or every object's <= 0.1).
"""

import contextlib
import copy
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from rvos.model.checkpoint import load_model, save_model
from rvos.model.rvos import PAPER_SPEC, RVOS, ModelSpec
from rvos.segmenter import Segmenter

CONFIDENT = 0.9


def synthetic_clip(frames: int, size: tuple[int, int], objects: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (frames (T, H, W, 3) uint8 RGB, first-frame id map (H, W) with ids 1..objects)."""
    height, width = size
    base = np.zeros((height, width, 3), np.uint8)
    base[..., 0] = np.linspace(20, 90, width, dtype=np.uint8)[None, :]
    base[..., 2] = np.linspace(30, 80, height, dtype=np.uint8)[:, None]
    clip, first = [], np.zeros(size, np.uint8)
    for t in range(frames):
        frame = base.copy()
        for k in range(objects):
            centre = (int(width * (0.2 + 0.6 * k / max(objects - 1, 1)) + 3 * t) % width, height // 2)
            axes = (width // (6 + 2 * k), height // 5)
            colour = (200 - 60 * k, 80 + 50 * k, 60 + t % 50)
            cv2.ellipse(frame, centre, axes, 0, 0, 360, colour, -1)
            if t == 0:
                cv2.ellipse(first, centre, axes, 0, 0, 360, k + 1, -1)
        clip.append(frame)
    return np.stack(clip), first


def run_variant(
    make: Callable[[], Segmenter], clip: np.ndarray, first: np.ndarray, context: Callable
) -> tuple[float, list[np.ndarray], np.ndarray]:
    """-> (frames/s, id maps, the last frame's winning probability (h, w) at the model's size).

    The Segmenter keeps only the last frame's probabilities, so confidence is judged on that frame."""
    segmenter = make()
    items = [(frame, first if t == 0 else None) for t, frame in enumerate(clip)]
    with context():
        maps = list(segmenter.run(items))
    return len(clip) / segmenter.seconds, maps, segmenter.probs.float().max(dim=0).values.numpy()


def agreement(
    reference: list[np.ndarray], maps: list[np.ndarray], confidence: np.ndarray
) -> tuple[float, float]:
    """-> (share of equal pixels over all frames, share on the last frame's confident pixels)."""
    overall = float(np.mean([np.mean(a == b) for a, b in zip(reference, maps)]))
    last_ref, last = reference[-1], maps[-1]
    conf = cv2.resize(confidence, last_ref.shape[::-1], interpolation=cv2.INTER_NEAREST)
    sure = (conf >= CONFIDENT) | (conf <= 1 - CONFIDENT)
    confident = float(np.mean(last_ref[sure] == last[sure])) if sure.any() else float("nan")
    return overall, confident


def bench_infer(
    frames: int = 20,
    size: tuple[int, int] = (240, 427),
    objects: int = 3,
    repeats: int = 3,
    checkpoint: Path | None = None,
    spec: ModelSpec | None = None,
    onnx: bool = True,
) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="rvos-bench-infer-") as tmp:
        work = Path(tmp)
        if checkpoint is None:
            torch.manual_seed(0)
            checkpoint = work / "random.pt"
            save_model(checkpoint, RVOS(spec or ModelSpec(**PAPER_SPEC)).eval(), size, "one_shot")
        model, payload = load_model(checkpoint)
        input_size = tuple(payload["input_size"])
        clip, first = synthetic_clip(frames, input_size, objects)
        slots = objects
        channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
        variants: dict[str, tuple[Callable[[], Segmenter], Callable]] = {
            "pytorch fp32 (default)": (
                lambda: Segmenter(model, input_size, slots=slots),
                contextlib.nullcontext,
            ),
            "pytorch fp32 inference_mode": (
                lambda: Segmenter(model, input_size, slots=slots),
                torch.inference_mode,
            ),
            "pytorch fp32 channels_last": (
                lambda: Segmenter(channels_last, input_size, slots=slots),
                contextlib.nullcontext,
            ),
            "pytorch bf16 autocast": (
                lambda: Segmenter(model, input_size, slots=slots),
                lambda: torch.autocast("cpu", dtype=torch.bfloat16),
            ),
        }
        if onnx:
            from rvos.onnx_engine import OnnxEngine
            from rvos.onnx_export import export_onnx

            export_onnx(checkpoint, work / "onnx")
            engine = OnnxEngine(work / "onnx")
            variants["onnxruntime fp32"] = (
                lambda: Segmenter(engine, input_size, slots=slots),
                contextlib.nullcontext,
            )
        rates: dict[str, list[float]] = {name: [] for name in variants}
        results = {}
        for _ in range(repeats):  # interleaved, so that a noisy minute hits every variant alike
            for name, (make, context) in variants.items():
                fps, maps, confidence = run_variant(make, clip, first, context)
                rates[name].append(fps)
                results[name] = (maps, confidence)
    ref_maps, ref_conf = results["pytorch fp32 (default)"]
    base = statistics.median(rates["pytorch fp32 (default)"])
    lines = [
        f"infer: {frames} frames {input_size[0]}x{input_size[1]}, {objects} objects (one-shot), "
        f"{torch.get_num_threads()} threads, median of {repeats}"
    ]
    for name, values in rates.items():
        fps = statistics.median(values)
        overall, confident = agreement(ref_maps, results[name][0], ref_conf)
        lines.append(
            f"  {name:30s} {fps:7.2f} frames/s  x{fps / base:.2f} of default  "
            f"masks = default on {100 * overall:.2f}% of pixels ({100 * confident:.2f}% confident)"
        )
    return lines
