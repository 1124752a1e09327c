"""Tiny datasets in the DAVIS-2017 and YouTube-VOS layouts, built by tests (moving rectangles over noise)."""

import json
from pathlib import Path

import cv2
import numpy as np

from rvos.masks import encode_mask


def write_davis_video(
    root: Path, name: str, frames: int, size: tuple[int, int], objects: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    height, width = size
    image_dir = root / "JPEGImages" / "480p" / name
    mask_dir = root / "Annotations" / "480p" / name
    image_dir.mkdir(parents=True)
    mask_dir.mkdir(parents=True)
    start = rng.uniform([0, 0], [width * 0.6, height * 0.6], size=(objects, 2))
    velocity = rng.uniform(-2, 2, size=(objects, 2))
    colours = rng.integers(60, 255, size=(objects, 3))
    box = (max(4, width // 5), max(4, height // 5))
    for t in range(frames):
        image = rng.integers(0, 50, size=(height, width, 3), dtype=np.uint8)
        mask = np.zeros((height, width), np.uint8)
        for k in range(objects):
            x, y = (start[k] + velocity[k] * t).astype(int)
            cv2.rectangle(image, (x, y), (x + box[0], y + box[1]), colours[k].tolist(), -1)
            cv2.rectangle(mask, (x, y), (x + box[0], y + box[1]), k + 1, -1)
        cv2.imwrite(str(image_dir / f"{t:05d}.jpg"), image)
        (mask_dir / f"{t:05d}.png").write_bytes(encode_mask(mask))


def make_davis(
    root: Path,
    train: int = 4,
    val: int = 2,
    frames: int = 8,
    size: tuple[int, int] = (48, 80),
    objects: int = 2,
) -> Path:
    """A DAVIS-2017 folder with `train` + `val` videos; returns `root`."""
    sets = {"train": [f"train-{i}" for i in range(train)], "val": [f"val-{i}" for i in range(val)]}
    seed = 0
    for names in sets.values():
        for name in names:
            write_davis_video(root, name, frames, size, objects, seed)
            seed += 1
    image_sets = root / "ImageSets" / "2017"
    image_sets.mkdir(parents=True)
    for split, names in sets.items():
        (image_sets / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    return root


# A YouTube-VOS object: (category, indices of the annotated frames it is visible on)
YoutubeObject = tuple[str, list[int]]


def write_youtube_video(
    subset: Path, name: str, objects: dict[int, YoutubeObject], frames: int, size: tuple[int, int], seed: int
) -> dict:
    """One video of a YouTube-VOS subset folder (`<root>/train`): JPEGs and id masks named like the
    release's every-5th-frame annotations (00000, 00005, ...), object k drawn only on its frames.
    Returns the video's meta.json entry (each object's category and the frame names it is on)."""
    rng = np.random.default_rng(seed)
    height, width = size
    (subset / "JPEGImages" / name).mkdir(parents=True)
    (subset / "Annotations" / name).mkdir(parents=True)
    stems = [f"{5 * t:05d}" for t in range(frames)]
    box = (max(4, width // 5), max(4, height // 5))
    start = {k: rng.uniform([0, 0], [width * 0.6, height * 0.6]) for k in objects}
    velocity = {k: rng.uniform(-2, 2, size=2) for k in objects}
    colours = {k: rng.integers(60, 255, size=3).tolist() for k in objects}
    for t, stem in enumerate(stems):
        image = rng.integers(0, 50, size=(height, width, 3), dtype=np.uint8)
        mask = np.zeros((height, width), np.uint8)
        for k, (_, visible) in objects.items():
            if t in visible:
                x, y = (start[k] + velocity[k] * t).astype(int)
                cv2.rectangle(image, (x, y), (x + box[0], y + box[1]), colours[k], -1)
                cv2.rectangle(mask, (x, y), (x + box[0], y + box[1]), k, -1)
        cv2.imwrite(str(subset / "JPEGImages" / name / f"{stem}.jpg"), image)
        (subset / "Annotations" / name / f"{stem}.png").write_bytes(encode_mask(mask))
    return {
        "objects": {
            str(k): {"category": category, "frames": [stems[t] for t in visible]}
            for k, (category, visible) in objects.items()
        }
    }


def make_youtube_vos(
    root: Path, videos: dict[str, dict[int, YoutubeObject]], frames: int = 5, size: tuple[int, int] = (48, 80)
) -> Path:
    """A YouTube-VOS folder: `videos` in train/ (with meta.json) and one video in valid/; returns `root`."""
    for subset, entries in (("train", videos), ("valid", {"valid-0": {1: ("cat", list(range(frames)))}})):
        meta = {"videos": {}}
        for seed, (name, objects) in enumerate(entries.items()):
            meta["videos"][name] = write_youtube_video(root / subset, name, objects, frames, size, seed)
        (root / subset / "meta.json").write_text(json.dumps(meta, indent=1))
    return root


TINY_TRAINING = {
    "seed": 3,
    "data": {"source": "local"},
    "index": {"height": 32, "width": 48},
    "model": {"encoder": "resnet18", "hidden_size": 16, "max_objects": 2},
    "train": {"epochs": 2, "batch_size": 2, "clip_len": 3, "teacher_forcing_epochs": 1, "validate_every": 1},
    "runtime": {"num_workers": 0, "threads": 1},
}


def write_params(path: Path, values: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def prepare_project(root: Path, values: dict, train: int = 5, val: int = 2, frames: int = 8) -> Path:
    """A folder with data/raw, data/splits and data/lmdb ready for training (cwd must be `root`)."""
    from rvos.config import config_from_dict
    from rvos.pipeline.index import index_stage
    from rvos.pipeline.split import split_stage
    from rvos.pipeline.tracking import StageRun

    make_davis(root / "data" / "raw", train=train, val=val, frames=frames)
    config = config_from_dict(values)
    split_stage(config, StageRun())
    index_stage(config, StageRun())
    write_params(root / "params.yaml", values)
    return root


def run_stage_command(stage: str, cwd: Path, timeout: int = 300):  # noqa: ANN201 - CompletedProcess
    """`python -m stages.<stage>` in `cwd` (its params.yaml), as dvc.yaml runs it, importing this checkout."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    return subprocess.run(
        [sys.executable, "-m", f"stages.{stage}"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(stderr: str) -> list[str]:
    """The ERROR log lines of a stage's stderr (INFO lines and progress bars dropped)."""
    return [line for line in stderr.splitlines() if " ERROR " in line]
