"""split + index stages and the clip datasets, on tiny DAVIS-layout data built by the tests."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rvos import paths
from rvos.config import config_from_dict
from rvos.data.dataset import ClipDataset, LmdbVideos, RawVideos
from rvos.data.layout import read_list
from rvos.errors import RvosError
from rvos.pipeline.index import index_stage
from rvos.pipeline.split import split_stage
from rvos.pipeline.tracking import StageRun
from tests.factories import error_lines, make_davis, run_stage_command, write_params

CONFIG = {"data": {"source": "local"}, "index": {"height": 48, "width": 80}, "seed": 7}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_davis(tmp_path / "data" / "raw", train=5, val=2, frames=6)
    return tmp_path


def run_data_stages(overrides: dict | None = None) -> None:
    config = config_from_dict({**CONFIG, **(overrides or {})})
    split_stage(config, StageRun())
    index_stage(config, StageRun())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_split_is_seeded_disjoint_and_keeps_davis_val_for_testing(project):
    config = config_from_dict(CONFIG)
    split_stage(config, StageRun())
    train, valid, test = (read_list(paths.SPLITS / f"{s}.txt") for s in ("train", "valid", "test"))
    assert test == ["val-0", "val-1"]
    assert len(valid) == 1 and len(train) == 4
    assert not set(train) & set(valid) and set(train) | set(valid) == {f"train-{i}" for i in range(5)}
    first = (paths.SPLITS / "valid.txt").read_bytes()
    split_stage(config, StageRun())
    assert (paths.SPLITS / "valid.txt").read_bytes() == first
    other = [config_from_dict({**CONFIG, "seed": s}) for s in range(20)]
    picks = set()
    for c in other:
        split_stage(c, StageRun())
        picks.add((paths.SPLITS / "valid.txt").read_text())
    assert len(picks) > 1  # the seed really chooses


def test_index_is_byte_deterministic_and_lock_free(project):
    run_data_stages()
    data = paths.LMDB / "data.mdb"
    first = sha256(data)
    assert sorted(p.name for p in paths.LMDB.iterdir()) == ["data.mdb"]
    videos = LmdbVideos(paths.LMDB)  # reading must not create lock.mdb inside the DVC output
    videos.frame("val-0", 0)
    assert sorted(p.name for p in paths.LMDB.iterdir()) == ["data.mdb"]
    run_data_stages()
    assert sha256(data) == first


def test_index_stores_resized_frames_masks_and_sequence_info(project):
    run_data_stages({"index": {"height": 32, "width": 40}})
    videos = LmdbVideos(paths.LMDB)
    assert set(videos.videos) == {f"train-{i}" for i in range(5)} | {"val-0", "val-1"}
    info = videos.videos["val-1"]
    assert info.frames == tuple(f"{t:05d}" for t in range(6))
    assert info.size == (48, 80)
    assert info.objects[0] == (1, 2)
    assert videos.frame("val-1", 3).shape == (32, 40, 3)
    mask = videos.mask("val-1", 3)
    assert mask.shape == (32, 40) and set(np.unique(mask)) <= {0, 1, 2}


def test_lmdb_and_raw_readers_return_the_same_clips(project):
    run_data_stages()
    lmdb_videos = LmdbVideos(paths.LMDB)
    raw_videos = RawVideos(paths.RAW, "davis", ["val-0"], 48, 80)
    a = ClipDataset(lmdb_videos, ["val-0"], clip_len=3)[1]
    b = ClipDataset(raw_videos, ["val-0"], clip_len=3)[1]
    assert a["start"] == b["start"] == 3
    assert np.array_equal(a["masks"], b["masks"])
    # frames went through one more JPEG round trip in the index (on pure noise, the worst case)
    difference = (a["images"].int() - b["images"].int()).abs().float()
    assert difference.mean() < 8.0 and difference.max() > 0


def test_clip_dataset_non_overlapping_and_random_clips(project):
    run_data_stages()
    videos = LmdbVideos(paths.LMDB)
    plain = ClipDataset(videos, ["train-0", "train-1"], clip_len=4)
    assert plain.clips == [("train-0", 0), ("train-1", 0)]  # 6 frames: one clip, tail dropped
    random = ClipDataset(videos, ["train-0"], clip_len=2, clips_per_video=5, seed=3)
    first = list(random.clips)
    random.set_epoch(1)
    assert random.clips != first and len(random.clips) == 5
    random.set_epoch(0)
    assert random.clips == first


def test_augmentation_is_shared_by_all_frames_and_reproducible(project):
    run_data_stages()
    videos = LmdbVideos(paths.LMDB)
    config = config_from_dict(
        {"train": {"augment": {"rotation_deg": 30.0, "zoom_min": 0.8, "zoom_max": 1.2}}}
    )
    augmented = ClipDataset(videos, ["val-0"], clip_len=3, augment=config.train.augment, seed=1)
    plain = ClipDataset(videos, ["val-0"], clip_len=3)
    a, b = augmented[0], augmented[0]
    assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["masks"], b["masks"])
    assert not np.array_equal(a["masks"], plain[0]["masks"])
    # the objects keep their shape relation across frames: same pixel count change for every frame
    counts = [(a["masks"][t] > 0).sum().item() for t in range(3)]
    plain_counts = [(plain[0]["masks"][t] > 0).sum().item() for t in range(3)]
    ratios = [c / p for c, p in zip(counts, plain_counts)]
    assert max(ratios) - min(ratios) < 0.25
    augmented.set_epoch(1)
    assert not np.array_equal(augmented[0]["masks"], a["masks"])


def test_clip_items_carry_the_videos_first_frame_warped_like_the_clip(project):
    """`reference`: the video's first annotated frame and mask, with the clip's augmentation."""
    run_data_stages()
    videos = LmdbVideos(paths.LMDB)
    augment = config_from_dict({"train": {"augment": {"rotation_deg": 30.0}}}).train.augment
    kept = ClipDataset(
        videos, ["val-0"], clip_len=2, augment=augment, seed=1, clips_per_video=4, reference=True
    )
    plain = ClipDataset(videos, ["val-0"], clip_len=2, clips_per_video=4, seed=1, reference=True)
    assert "reference_image" not in ClipDataset(videos, ["val-0"], clip_len=2)[0]
    for item in range(4):
        name, start = plain.clips[item]
        unwarped = plain[item]
        assert np.array_equal(unwarped["reference_mask"], videos.mask(name, 0))
        assert np.array_equal(unwarped["reference_image"].permute(1, 2, 0), videos.frame(name, 0))
        warped = kept[item]
        assert np.array_equal(
            warped["masks"], ClipDataset(videos, ["val-0"], 2, augment, 4, 1)[item]["masks"]
        )
        if start == 0:  # the same frame, warped the same way
            assert np.array_equal(warped["reference_mask"], warped["masks"][0])
            assert np.array_equal(warped["reference_image"], warped["images"][0])
        else:
            assert not np.array_equal(warped["reference_mask"], unwarped["reference_mask"])


def annotation(project: Path, video: str, frame: int) -> Path:
    return project / "data" / "raw" / "Annotations" / "480p" / video / f"{frame:05d}.png"


def frame_file(project: Path, video: str, frame: int) -> Path:
    return project / "data" / "raw" / "JPEGImages" / "480p" / video / f"{frame:05d}.jpg"


def rgb_mask(path: Path) -> None:
    Image.open(path).convert("RGB").save(path)


def wrong_size_mask(path: Path) -> None:
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(path)


def unknown_id(path: Path) -> None:
    mask = np.array(Image.open(path))
    mask[0:3, 0:3] = 9
    Image.fromarray(mask, mode="L").save(path)


BAD_INPUTS = [
    (
        "corrupt frame",
        lambda p: frame_file(p, "train-1", 2).write_bytes(b"\xff\xd8 not a jpeg"),
        r"train-1/00002\.jpg: frame is corrupt",
    ),
    (
        "missing frame",
        lambda p: frame_file(p, "train-1", 2).unlink(),
        r"train-1/00002\.jpg: frame is missing",
    ),
    (
        "rgb mask",
        lambda p: rgb_mask(annotation(p, "val-1", 3)),
        r"val-1/00003\.png: mask is RGB, expected an indexed",
    ),
    (
        "size mismatch",
        lambda p: wrong_size_mask(annotation(p, "val-0", 1)),
        r"val-0/00001\.png: mask is 10x10 but frame 00001\.jpg is 48x80",
    ),
    (
        "no first-frame annotation",
        lambda p: annotation(p, "train-0", 0).unlink(),
        r"train-0/00000\.png: first-frame annotation is missing",
    ),
    (
        "unknown object id",
        lambda p: unknown_id(annotation(p, "train-2", 4)),
        r"train-2/00004\.png: unknown object id 9",
    ),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_clear_error_and_leaves_no_index(project, case):
    _, damage, message = case
    config = config_from_dict(CONFIG)
    split_stage(config, StageRun())
    damage(project)
    with pytest.raises(RvosError, match=message) as error:
        index_stage(config, StageRun())
    assert "\n" not in str(error.value)
    assert not paths.LMDB.exists()
    assert not [p for p in paths.LMDB.parent.iterdir() if p.name.startswith(".lmdb")]


def test_interrupted_index_keeps_the_previous_output(project, monkeypatch):
    run_data_stages()
    before = sha256(paths.LMDB / "data.mdb")
    import rvos.data.lmdb_index as lmdb_index

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lmdb_index, "encode_video", explode)
    with pytest.raises(KeyboardInterrupt):
        index_stage(config_from_dict({**CONFIG, "runtime": {"num_workers": 1}}), StageRun())
    assert sha256(paths.LMDB / "data.mdb") == before


def test_dataloader_workers_read_the_lmdb_like_the_main_process(project):
    import torch
    from torch.utils.data import DataLoader

    run_data_stages()
    videos = LmdbVideos(paths.LMDB)
    videos.frame("val-0", 0)  # the main process has the environment open, as during training
    dataset = ClipDataset(videos, ["train-0", "train-1", "val-0"], clip_len=3)
    loader = DataLoader(dataset, batch_size=2, num_workers=2, multiprocessing_context="spawn")
    batches = list(loader)
    assert sum(len(b["video"]) for b in batches) == len(dataset)
    assert torch.equal(batches[0]["masks"][0], dataset[0]["masks"])


def test_windows_are_spread_over_the_video_and_fit_the_shortest_one(project):
    from rvos.config import TrainConfig
    from rvos.data.dataset import clip_starts
    from rvos.training.loop import window_frames

    assert clip_starts(39, 20) == [0]  # the original drops the tail: here half the video
    assert clip_starts(39, 20, spread=True) == [0, 19]  # two windows, first frame to last
    assert clip_starts(25, 20, spread=True) == [2]  # one window, centred
    assert clip_starts(60, 20, spread=True) == [0, 20, 40]  # a multiple: the original's clips
    assert clip_starts(10, 20, spread=True) == []
    run_data_stages()
    videos = LmdbVideos(paths.LMDB)
    names = sorted(videos.videos)
    shortest = min(len(videos.videos[n].frames) for n in names)
    assert window_frames(TrainConfig(clip_len=2, window_clips=2), videos, names) == 4
    assert window_frames(TrainConfig(clip_len=2, window_clips=100), videos, names) == shortest // 2 * 2


@pytest.mark.parametrize("packed", [False, True])
def test_index_errors_about_local_data_name_the_users_file(tmp_path, monkeypatch, packed):
    """`data.source: local`: a frame only the index stage can find corrupt is named in the user's
    folder (or as `<archive>:<member>`), not as its copy under data/raw."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    folder = make_davis(tmp_path / "mine" / "DAVIS", train=2, val=1, frames=4)
    (folder / "JPEGImages/480p/val-0/00002.jpg").write_bytes(b"not a jpeg")
    path = folder
    if packed:
        path = Path(shutil.make_archive(str(tmp_path / "mine"), "zip", tmp_path / "mine", "DAVIS"))
    params = {"data": {"source": "local", "local": {"path": str(path)}}, "index": {"height": 32, "width": 48}}
    write_params(project / "params.yaml", params)
    for stage in ("download", "split"):
        done = run_stage_command(stage, project)
        assert done.returncode == 0, done.stderr[-2000:]
    result = run_stage_command("index", project)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    where = f"{path}:DAVIS/" if packed else f"{folder}/"
    assert f"{where}JPEGImages/480p/val-0/00002.jpg: frame is corrupt or not an image" in lines[0]
    assert "data/raw" not in lines[0]
    assert not (project / paths.LMDB).exists()
