"""The `split` stage: which videos train the model, which select the checkpoint, which are scored.

Three disjoint lists in `data/splits/`, one video name per line:
- `train.txt`: videos the model learns from,
- `valid.txt`: videos for the per-epoch validation that picks the best checkpoint,
- `test.txt`: videos scored by the `metrics` stage (never used for checkpoint selection; the original
  selected DAVIS checkpoints on DAVIS val, the set it then reported, spec section 7).

DAVIS layout (synthetic, davis2017, local): test = ImageSets/2017/val.txt; valid is a seeded
`split.valid_fraction` of ImageSets/2017/train.txt and train is the rest.
YouTube-VOS: like the original, a seeded `split.youtube_test_fraction` of `train/` becomes train-val
(our local test set, its ground truth being public) and the rest train-train; both are also written in
`meta.json` format (`train-train-meta.json`, `train-val-meta.json`). valid is carved out of train-train.
"""

import json
import logging
from pathlib import Path

import numpy as np

from rvos import paths
from rvos.atomic import atomic_dir
from rvos.config import Config
from rvos.errors import RvosError
from rvos.tracking import StageRun

log = logging.getLogger(__name__)


def dataset_layout(source: str) -> str:
    """'youtube' for YouTube-VOS, 'davis' for every source stored in the DAVIS-2017 layout."""
    return "youtube" if source == "youtubevos" else "davis"


def read_list(path: Path) -> list[str]:
    try:
        names = [line.strip() for line in path.read_text().splitlines()]
    except OSError as err:
        raise RvosError(f"{path}: cannot read video list ({err.strerror})") from None
    return [name for name in names if name]


def write_list(path: Path, names: list[str]) -> None:
    path.write_text("".join(f"{name}\n" for name in names))


def hold_out(names: list[str], fraction: float, seed: int, what: str) -> tuple[list[str], list[str]]:
    """Split sorted `names` into (kept, held_out) with a seeded shuffle; both sides non-empty."""
    names = sorted(names)
    if len(names) < 2:
        raise RvosError(f"{what}: needs at least 2 videos to hold some out, found {len(names)}")
    count = min(max(1, round(len(names) * fraction)), len(names) - 1)
    order = np.random.default_rng(seed).permutation(len(names))
    held = sorted(names[i] for i in order[:count])
    kept = sorted(set(names) - set(held))
    return kept, held


def _davis_splits(raw: Path, config: Config) -> dict[str, list[str]]:
    image_sets = raw / "ImageSets" / "2017"
    train_all = read_list(image_sets / "train.txt")
    test = sorted(read_list(image_sets / "val.txt"))
    overlap = set(train_all) & set(test)
    if overlap:
        raise RvosError(f"{image_sets}: videos in both train.txt and val.txt: {', '.join(sorted(overlap)[:5])}")
    train, valid = hold_out(train_all, config.split.valid_fraction, config.seed, str(image_sets / "train.txt"))
    return {"train": train, "valid": valid, "test": test}


def _youtube_splits(raw: Path, config: Config, out: Path) -> dict[str, list[str]]:
    meta_path = raw / "train" / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        videos = meta["videos"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RvosError(f"{meta_path}: not a YouTube-VOS meta.json ({err})") from None
    train_train, train_val = hold_out(
        list(videos), config.split.youtube_test_fraction, config.seed, str(meta_path)
    )
    for name, subset in (("train-train-meta.json", train_train), ("train-val-meta.json", train_val)):
        subset_meta = {"videos": {vid: videos[vid] for vid in subset}}
        (out / name).write_text(json.dumps(subset_meta, indent=1, sort_keys=True) + "\n")
    train, valid = hold_out(train_train, config.split.valid_fraction, config.seed + 1, "train-train")
    return {"train": train, "valid": valid, "test": train_val}


def split_stage(config: Config, run: StageRun) -> None:
    """Write data/splits/{train,valid,test}.txt (and the YouTube-VOS meta files) from data/raw."""
    with atomic_dir(paths.SPLITS) as out:
        if dataset_layout(config.data.source) == "youtube":
            splits = _youtube_splits(paths.RAW, config, out)
        else:
            splits = _davis_splits(paths.RAW, config)
        for name, names in splits.items():
            write_list(out / f"{name}.txt", names)
    counts = {f"videos_{name}": len(names) for name, names in splits.items()}
    log.info("splits: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    run.log_metrics(counts)
