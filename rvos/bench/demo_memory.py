"""`rvos bench demo-memory`: peak memory of `rvos demo` on a short and a long generated video.

The demo streams (read, segment, write, frame by frame), so its peak resident memory must not depend
on the video's length. Each run is its own process (`python -m rvos.cli demo ...`) whose peak RSS
comes from the kernel's accounting of that one child (`os.wait4`), so runs cannot see each other's
memory. The videos (a moving, colour-changing ellipse over a gradient, MPEG-4) and the checkpoint
(the params' model with random weights: memory does not depend on what the weights learnt) are
generated in `workdir`. `code` runs the demo of another checkout (e.g. an older commit) on the same
files, for a before/after comparison.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from rvos.config import Config, load_config
from rvos.data.streams import Mp4Writer
from rvos.masks import write_mask
from rvos.model.checkpoint import save_model
from rvos.model.rvos import RVOS, ModelSpec

FPS_LINE = re.compile(r"(\d+) frames, (\d+) objects \(([a-z-]+)\) at ([\d.]+) frames/s")


def ellipse_at(t: int, size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Centre and axes of the generated object on frame t (it drifts right and back)."""
    height, width = size
    x = int(width * (0.3 + 0.2 * np.sin(t / 40)))
    return (x, height // 2), (width // 8, height // 6)


def make_video(path: Path, frames: int, size: tuple[int, int]) -> Path:
    height, width = size
    background = np.zeros((height, width, 3), np.uint8)
    background[..., 0] = np.linspace(20, 90, width, dtype=np.uint8)[None, :]
    background[..., 2] = np.linspace(30, 80, height, dtype=np.uint8)[:, None]
    writer = Mp4Writer(path, size, 25.0)
    try:
        for t in range(frames):
            frame = background.copy()
            centre, axes = ellipse_at(t, size)
            cv2.ellipse(frame, centre, axes, 0, 0, 360, (220, 200 - t % 100, 60), -1)
            writer.write(frame)
    finally:
        writer.close()
    return path


def make_inputs(workdir: Path, config: Config, lengths: list[int], size: tuple[int, int]) -> dict:
    """The generated checkpoint, first-frame mask and one video per length (kept between runs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = workdir / "random-one-shot.pt"
    input_size = (config.index.height, config.index.width)
    torch.manual_seed(0)
    save_model(checkpoint, RVOS(ModelSpec.from_config(config.model, "one_shot")), input_size, "one_shot")
    mask = np.zeros(size, np.uint8)
    centre, axes = ellipse_at(0, size)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    write_mask(workdir / "first.png", mask)
    videos = {}
    for frames in lengths:
        path = workdir / f"video-{frames}-{size[1]}x{size[0]}.mp4"
        if not path.is_file():
            make_video(path, frames, size)
        videos[frames] = path
    return {"checkpoint": checkpoint, "mask": workdir / "first.png", "videos": videos}


def measure(command: list[str], cwd: Path, log: Path) -> tuple[int, float, str]:
    """Run `command` as a child -> (its peak RSS in bytes, wall seconds, its stderr)."""
    start = time.perf_counter()
    with open(log, "w") as err:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)  # the rusage of exactly this child
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    text = log.read_text()
    if process.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(command)} failed with status {process.returncode}:\n{tail}")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return usage.ru_maxrss * scale, seconds, text


def bench_demo_memory(
    params: Path,
    lengths: list[int],
    size: tuple[int, int],
    workdir: Path,
    overlay: bool = True,
    code: Path | None = None,
) -> list[str]:
    """Peak RSS of one `rvos demo` process per video length -> the report's lines."""
    config = load_config(params) if params.is_file() else Config()
    inputs = make_inputs(workdir, config, lengths, size)
    cwd = (code or Path.cwd()).resolve()
    runs = []
    for frames in lengths:
        out = workdir / f"out-{frames}"
        if out.exists():
            shutil.rmtree(out)
        video, mask, checkpoint = inputs["videos"][frames], inputs["mask"], inputs["checkpoint"]
        command = [sys.executable, "-m", "rvos.cli", "demo", str(video), "--mask", str(mask)]
        # no params file: the demo's default settings, whatever the working directory holds
        command += [
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
            "--params",
            str(workdir / "none.yaml"),
        ]
        if overlay:
            command.append("--overlay")
        peak, seconds, log = measure(command, cwd, workdir / f"demo-{frames}.log")
        match = FPS_LINE.search(log)
        written = len(list(out.glob("*.png")))
        if written != frames:
            raise RuntimeError(f"rvos demo wrote {written} masks for {frames} frames (see {workdir})")
        runs.append((frames, peak, seconds, float(match.group(4)) if match else float("nan")))
    anchor = runs[0][1]
    model = config.model
    lines = [
        f"demo-memory: rvos demo (one-shot{', --overlay' if overlay else ''}) on generated "
        f"{size[1]}x{size[0]} MPEG-4 videos; {model.encoder}, hidden {model.hidden_size}, "
        f"{model.max_objects} slots, {config.index.height}x{config.index.width} input (random weights); "
        f"one process per run, code: {cwd}",
        f"  {'frames':>7} {'peak RSS':>11} {'wall':>9} {'frames/s':>9} {'ratio':>7}",
    ]
    for frames, peak, seconds, fps in runs:
        lines.append(
            f"  {frames:>7} {peak / 2**20:>7.0f} MiB {seconds:>7.1f} s {fps:>9.1f} {peak / anchor:>7.2f}"
        )
    return lines
