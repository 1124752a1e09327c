"""The embedded synthetic dataset: exact DAVIS layout, byte-determinism, and real video dynamics."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from rvos.config import SyntheticConfig
from rvos.data.layout import check_davis_layout
from rvos.data.synthetic import generate_synthetic_davis
from rvos.masks import read_mask

SMALL = SyntheticConfig(
    train_videos=3, val_videos=2, min_frames=6, max_frames=9, height=64, width=96, max_objects=3
)


def generate(root: Path, cfg: SyntheticConfig = SMALL, seed: int = 0) -> Path:
    root.mkdir(parents=True)
    generate_synthetic_davis(cfg, seed, root)
    return root


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_is_exactly_davis_2017(tmp_path):
    root = generate(tmp_path / "raw")
    check_davis_layout(root)
    train = (root / "ImageSets" / "2017" / "train.txt").read_text().splitlines()
    val = (root / "ImageSets" / "2017" / "val.txt").read_text().splitlines()
    assert train == ["synth-train-0000", "synth-train-0001", "synth-train-0002"]
    assert val == ["synth-val-0000", "synth-val-0001"]
    assert sorted(p.name for p in (root / "JPEGImages" / "480p").iterdir()) == sorted(train + val)
    for name in train + val:
        frames = sorted((root / "JPEGImages" / "480p" / name).iterdir())
        masks = sorted((root / "Annotations" / "480p" / name).iterdir())
        assert 6 <= len(frames) <= 9
        assert [f.name for f in frames] == [f"{t:05d}.jpg" for t in range(len(frames))]
        assert [m.stem for m in masks] == [f.stem for f in frames]
        from PIL import Image

        with Image.open(masks[0]) as first, Image.open(frames[0]) as frame:
            assert first.mode == "P" and first.size == frame.size == (96, 64)
        ids = set(np.unique(read_mask(masks[0])).tolist()) - {0}
        assert ids == set(range(1, len(ids) + 1)) and 1 <= len(ids) <= 3


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a, b = generate(tmp_path / "a"), generate(tmp_path / "b")
    assert digests(a) == digests(b)
    c = generate(tmp_path / "c", seed=1)
    assert digests(c) != digests(a)


def test_a_video_does_not_depend_on_how_many_videos_there_are(tmp_path):
    few = generate(tmp_path / "few")
    more = generate(tmp_path / "more", SyntheticConfig(**{**SMALL.__dict__, "train_videos": 5}))
    video = Path("JPEGImages/480p/synth-train-0001")
    assert digests(few / video) == digests(more / video)
    assert digests(few / "Annotations/480p/synth-val-0001") == digests(
        more / "Annotations/480p/synth-val-0001"
    )


@pytest.fixture(scope="module")
def dynamics(tmp_path_factory) -> list[list[np.ndarray]]:
    cfg = SyntheticConfig(
        train_videos=12, val_videos=1, min_frames=30, max_frames=40, height=96, width=160, max_objects=5
    )
    root = generate(tmp_path_factory.mktemp("dyn") / "raw", cfg, seed=5)
    videos = []
    for folder in sorted((root / "Annotations" / "480p").iterdir()):
        videos.append([read_mask(p) for p in sorted(folder.iterdir())])
    return videos


def test_objects_move_and_every_object_is_visible_at_the_start(dynamics):
    moved = []
    for masks in dynamics:
        first = masks[0]
        for obj in set(np.unique(first).tolist()) - {0}:
            assert (first == obj).sum() >= 0.01 * first.size  # the one-shot annotation shows it well
            ys, xs = np.nonzero(first == obj)
            later = np.nonzero(masks[5] == obj)
            if len(later[0]):
                moved.append(np.hypot(later[0].mean() - ys.mean(), later[1].mean() - xs.mean()))
    assert np.median(moved) > 2.0  # pixels in 5 frames


def test_objects_occlude_each_other_and_leave_and_come_back(dynamics):
    occlusions = reentries = 0
    counts = []
    for masks in dynamics:
        ids = set(np.unique(masks[0]).tolist()) - {0}
        counts.append(len(ids))
        for obj in ids:
            areas = np.array([(m == obj).sum() for m in masks], dtype=float)
            gone = np.nonzero(areas == 0)[0]
            if len(gone) and (areas[gone[0] :] > 0).any():
                reentries += 1
            # the visible area falls by a quarter in one frame while the object is away from the border
            # (so it is not leaving): another object covers it
            for t in range(1, len(masks)):
                ys, xs = np.nonzero(masks[t] == obj)
                inside = len(ys) and ys.min() > 0 and xs.min() > 0 and ys.max() < 95 and xs.max() < 159
                if inside and areas[t] < 0.75 * areas[t - 1]:
                    occlusions += 1
                    break
    assert occlusions >= 1 and reentries >= 1
    assert len(set(counts)) >= 3  # 1..max_objects objects per video, not a fixed count
