"""Splits: which videos train the model, which select the checkpoint, which are scored.

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
from pathlib import Path

import numpy as np

from rvos.config import SplitConfig
from rvos.data.layout import read_list
from rvos.errors import RvosError


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


def davis_splits(raw: Path, split: SplitConfig, seed: int) -> dict[str, list[str]]:
    """{'train', 'valid', 'test'} -> names, from the DAVIS-layout ImageSets lists of `raw`."""
    image_sets = raw / "ImageSets" / "2017"
    train_all = read_list(image_sets / "train.txt")
    test = sorted(read_list(image_sets / "val.txt"))
    overlap = set(train_all) & set(test)
    if overlap:
        raise RvosError(f"{image_sets}: videos in both train.txt and val.txt: {', '.join(sorted(overlap)[:5])}")
    train, valid = hold_out(train_all, split.valid_fraction, seed, str(image_sets / "train.txt"))
    return {"train": train, "valid": valid, "test": test}


def youtube_splits(raw: Path, split: SplitConfig, seed: int, out: Path) -> dict[str, list[str]]:
    """The same from `raw/train/meta.json`; also writes the two meta.json subsets into `out`."""
    meta_path = raw / "train" / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        videos = meta["videos"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RvosError(f"{meta_path}: not a YouTube-VOS meta.json ({err})") from None
    train_train, train_val = hold_out(
        list(videos), split.youtube_test_fraction, seed, str(meta_path)
    )
    for name, subset in (("train-train-meta.json", train_train), ("train-val-meta.json", train_val)):
        subset_meta = {"videos": {vid: videos[vid] for vid in subset}}
        (out / name).write_text(json.dumps(subset_meta, indent=1, sort_keys=True) + "\n")
    train, valid = hold_out(train_train, split.valid_fraction, seed + 1, "train-train")
    return {"train": train, "valid": valid, "test": train_val}
