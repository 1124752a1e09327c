"""`rvos bench infer`: a smoke run on a tiny model (the figures are in docs/benchmarks.md, not timed here)."""

import re

import numpy as np

from rvos.bench.infer import bench_infer, synthetic_clip
from rvos.model.rvos import ModelSpec


def test_synthetic_clip_gives_each_object_on_the_first_frame():
    clip, first = synthetic_clip(4, (48, 80), 3)
    assert clip.shape == (4, 48, 80, 3) and clip.dtype == np.uint8
    assert sorted(np.unique(first).tolist()) == [0, 1, 2, 3]
    assert not np.array_equal(clip[0], clip[3])  # the objects move


def test_bench_infer_reports_every_variant_against_the_default():
    spec = ModelSpec("resnet18", 16, 3, 3, True)
    lines = bench_infer(frames=3, size=(48, 80), objects=3, repeats=1, spec=spec)
    assert lines[0].startswith("infer: 3 frames 48x80, 3 objects")
    rows = {line.split("  ")[1].strip(): line for line in lines[1:]}
    assert set(rows) == {
        "pytorch fp32 (default)",
        "pytorch fp32 inference_mode",
        "pytorch bf16 autocast",
        "onnxruntime fp32",
    }
    assert "x1.00 of default" in rows["pytorch fp32 (default)"]
    assert "100.00% of pixels" in rows["pytorch fp32 (default)"]  # the default equals itself
    shares = [float(re.search(r"on ([\d.]+)% of pixels", line).group(1)) for line in lines[1:]]
    assert min(shares[:2] + shares[3:]) >= 99.9  # inference_mode and ONNX change no mask
