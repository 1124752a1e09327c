"""Benchmarks: smoke runs on tiny sizes (`rvos bench infer`, `rvos bench all`), not timed."""

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
        "pytorch fp32 channels_last",
        "pytorch bf16 autocast",
        "onnxruntime fp32",
    }
    assert "x1.00 of default" in rows["pytorch fp32 (default)"]
    assert "100.00% of pixels" in rows["pytorch fp32 (default)"]  # the default equals itself
    shares = [float(re.search(r"on ([\d.]+)% of pixels", line).group(1)) for line in lines[1:]]
    exact = [share for line, share in zip(lines[1:], shares) if "bf16" not in line]
    assert min(exact) >= 99.9  # the fp32 settings and ONNX change no mask


def test_bench_all_runs_the_chosen_benchmarks_and_skips_what_is_missing(tmp_path, monkeypatch):
    from rvos.bench import all as bench_all_module

    monkeypatch.chdir(tmp_path)  # no data/lmdb and no dvc.yaml here
    lines = list(
        bench_all_module.bench_all(tmp_path / "params.yaml", None, tmp_path, ["loader", "dvc-status"])
    )
    assert lines[0] == "skip loader: data/lmdb not found (run dvc repro index first)"
    assert lines[1].startswith("skip dvc-status: ") and "no dvc.yaml" in lines[1]


def test_dvc_status_is_timed_in_a_project(tmp_path):
    import subprocess

    from rvos.bench.all import bench_dvc_status

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text("stages:\n  noop:\n    cmd: 'true'\n")
    (line,) = bench_dvc_status(1, tmp_path)
    seconds = float(line.split(": ")[1].split(" s")[0])
    assert 0 < seconds < 60 and "of the 3 s goal" in line


def test_bench_train_profile_lists_the_step_operators(tmp_path, capsys):
    import yaml

    from rvos.cli import main

    params = tmp_path / "params.yaml"
    tiny = {"index": {"height": 32, "width": 48}, "model": {"hidden_size": 16, "max_objects": 2}}
    tiny["train"] = {"batch_size": 1, "clip_len": 2, "precision": "fp32"}
    params.write_text(yaml.safe_dump(tiny))
    assert main(["bench", "train", "--params", str(params), "--device", "cpu", "--profile"]) in (0, None)
    out = capsys.readouterr().out
    assert out.startswith("train step profile: batch 1 clips x 2 frames, one_shot, cpu, train.precision fp32")
    assert "resnet18 hidden 16 2 slots 32x48" in out.splitlines()[0]
    assert "aten::convolution_backward" in out and "Self CPU" in out  # the backward pass was profiled
