"""Short real trainings: checkpoint format, determinism, resume after a kill, MLflow, DDP on CPU."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rvos import paths
from rvos.config import config_from_dict
from rvos.model.checkpoint import load_model
from rvos.model.rvos import RVOS, ModelSpec
from rvos.pipeline.index import index_stage
from rvos.pipeline.runner import execute_stage
from rvos.pipeline.tracking import StageRun
from rvos.pipeline.train import CURVE_FIELDS, train_stage
from rvos.training.loop import set_epoch_lr
from rvos.training.objective import zero_shot_slot_ids
from tests.factories import TINY_TRAINING, prepare_project

ROOT = Path(__file__).resolve().parents[1]


def merged(**sections) -> dict:
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY_TRAINING.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            values[key] = {**values.get(key, {}), **value}
        else:
            values[key] = value
    return values


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_validation_runs_every_validate_every_epochs_and_after_the_last(tmp_path, monkeypatch):
    # 3 epochs, validate_every 2: epochs 2 and 3 (the last) are validated and may be chosen; epoch 1 has
    # NaN for both the clip loss and the video J&F, and is never the checkpoint.
    monkeypatch.chdir(tmp_path)
    values = merged(train={"epochs": 3, "validate_every": 2})
    prepare_project(tmp_path, values)
    summary = train_stage(config_from_dict(values), StageRun())
    rows = [r.split(",") for r in (paths.TRAIN_REPORTS / "curves.csv").read_text().splitlines()[1:]]
    val_loss = [float(r[CURVE_FIELDS.index("val_loss")]) for r in rows]
    val_jf = [float(r[CURVE_FIELDS.index("val_jf")]) for r in rows]
    assert np.isnan(val_loss[0]) and np.isnan(val_jf[0])
    assert all(np.isfinite(val_loss[1:])) and all(0.0 <= jf <= 1.0 for jf in val_jf[1:])
    assert summary["best_epoch"] in (2, 3)
    assert summary["best_val_jf"] == pytest.approx(max(val_jf[1:]), abs=1e-6)


@pytest.mark.parametrize("mode", ["one_shot", "zero_shot"])
def test_short_training_writes_a_safe_checkpoint_and_curves(tmp_path, monkeypatch, mode):
    monkeypatch.chdir(tmp_path)
    values = merged(mode=mode)
    prepare_project(tmp_path, values)
    summary = train_stage(config_from_dict(values), StageRun())
    payload = torch.load(paths.BEST_CHECKPOINT, map_location="cpu", weights_only=True)
    assert payload["mode"] == mode and payload["input_size"] == [32, 48]
    assert payload["spec"]["one_shot"] == (mode == "one_shot")
    model, info = load_model(paths.BEST_CHECKPOINT)
    assert info["info"]["epoch"] == summary["best_epoch"] in (1, 2)
    rows = (paths.TRAIN_REPORTS / "curves.csv").read_text().splitlines()
    header = "epoch,train_loss,val_loss,val_iou,val_jf,val_j,val_f,clips_per_s,teacher_forcing,lr"
    assert rows[0] == header
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    video_jf = [float(r.split(",")[4]) for r in rows[1:]]
    assert all(0.0 <= jf <= 1.0 for jf in video_jf)  # whole-video validation ran after every epoch
    assert (
        summary["best_val_jf"] == pytest.approx(max(video_jf), abs=1e-6)
        and summary["best_val_jf"] == info["info"]["val_jf"]
    )
    assert info["info"]["infer"]["mask_threshold"] == 0.5  # the settings it was validated with
    assert not list((tmp_path / ".rvos" / "train").glob("*/last.pt"))  # resume state cleared at the end


@pytest.mark.parametrize(
    ("mode", "reference_frame", "expected"),
    [("one_shot", "video", True), ("one_shot", "clip", False), ("zero_shot", "video", False)],
)
def test_one_shot_training_clips_bring_the_videos_first_frame(
    tmp_path, monkeypatch, mode, reference_frame, expected
):
    """`train.reference_frame: video`: one-shot training batches (and validation clips) carry the
    video's first frame, which the model's target similarity takes the objects' references from."""
    from rvos.data.dataset import LmdbVideos
    from rvos.data.layout import read_list
    from rvos.distributed import Distributed
    from rvos.training.loop import make_loaders

    monkeypatch.chdir(tmp_path)
    values = merged(mode=mode, train={"reference_frame": reference_frame})
    prepare_project(tmp_path, values)
    config = config_from_dict(values)
    videos = LmdbVideos(paths.LMDB)
    names = [read_list(paths.SPLITS / f"{split}.txt") for split in ("train", "valid")]
    _, train_loader, valid_loader = make_loaders(config, videos, *names, Distributed(), 0)
    for loader in (train_loader, valid_loader):
        batch = next(iter(loader))
        assert ("reference_image" in batch) == expected
        if expected:
            assert batch["reference_image"].shape == batch["images"][:, 0].shape
            assert batch["reference_mask"].shape == batch["masks"][:, 0].shape


def test_same_params_give_the_same_weights(tmp_path, monkeypatch):
    results = []
    for run in ("a", "b"):
        folder = tmp_path / run
        folder.mkdir()
        monkeypatch.chdir(folder)
        prepare_project(folder, merged())
        train_stage(config_from_dict(merged()), StageRun())
        results.append(weights(folder / paths.BEST_CHECKPOINT))
    assert same_weights(*results)


def run_training_process(folder: Path) -> subprocess.Popen:
    env = {**os.environ, "RVOS_TRACKING": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "rvos.cli", "train"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_training_resumes_and_ends_like_an_uninterrupted_one(tmp_path, monkeypatch):
    values = merged(train={"epochs": 4, "teacher_forcing_epochs": 2, "lr_schedule": "cosine"})
    folders = {name: tmp_path / name for name in ("straight", "killed")}
    for folder in folders.values():
        folder.mkdir()
        monkeypatch.chdir(folder)
        prepare_project(folder, values, train=8, frames=9)
    monkeypatch.chdir(tmp_path)

    straight = run_training_process(folders["straight"])
    assert straight.wait(timeout=600) == 0, straight.stderr.read()

    killed = run_training_process(folders["killed"])
    state_files = folders["killed"] / ".rvos" / "train"
    deadline = time.time() + 600
    while not list(state_files.glob("*/last.pt")):
        assert killed.poll() is None and time.time() < deadline, "training ended before its first epoch"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    state = torch.load(next(state_files.glob("*/last.pt")), weights_only=True)
    assert 1 <= state["epoch"] < 4  # really interrupted mid-training
    assert not (folders["killed"] / paths.BEST_CHECKPOINT).exists()

    resumed = run_training_process(folders["killed"])
    _, log = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, log
    assert "resuming from" in log
    assert same_weights(
        weights(folders["straight"] / paths.BEST_CHECKPOINT),
        weights(folders["killed"] / paths.BEST_CHECKPOINT),
    )
    # Same losses and lrs epoch by epoch (the clips/s column is a timing, so it is left out).
    curves = [
        [
            [value for column, value in zip(CURVE_FIELDS, row.split(",")) if column != "clips_per_s"]
            for row in (f / paths.TRAIN_REPORTS / "curves.csv").read_text().split()
        ]
        for f in folders.values()
    ]
    assert curves[0] == curves[1] and len(curves[0]) == 5


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [("constant", [1.0, 1.0, 1.0, 1.0]), ("cosine", [1.0, 0.8535534, 0.5, 0.1464466])],
)
def test_lr_schedule_is_a_function_of_the_epoch(schedule, expected):
    train_config = config_from_dict(
        merged(train={"epochs": 4, "lr": 1e-3, "encoder_lr": 1e-4, "lr_schedule": schedule})
    ).train
    model = torch.nn.Linear(2, 2)
    optimizers = [
        torch.optim.Adam(model.parameters(), lr=1.0),
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]),
    ]
    # Out of order on purpose: a resumed run starts in the middle.
    for epoch in (2, 0, 3, 1):
        factor = set_epoch_lr(optimizers, train_config, epoch)
        assert factor == pytest.approx(expected[epoch])
        assert optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * expected[epoch])
        assert optimizers[1].param_groups[0]["lr"] == pytest.approx(1e-4 * expected[epoch])


def test_training_is_tracked_in_mlflow(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    prepare_project(tmp_path, merged())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("RVOS_TRACKING", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DVC_EXP_NAME", "tiny-exp")
    baseline = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", baseline)  # what `dvc exp run` sets
    execute_stage("train", train_stage, str(tmp_path / "params.yaml"))
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("rvos")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("dvc.role") == "parent")
    child = next(r for r in runs if r.data.tags.get("dvc.stage") == "train")
    # the names say what a run is; every run carries the tags to filter and group by
    assert parent.info.run_name == "one_shot · tiny-exp" and child.info.run_name == "train · one_shot"
    for run in (parent, child):
        tags = run.data.tags
        assert (tags["mode"], tags["seed"], tags["dvc.exp_name"]) == ("one_shot", "3", "tiny-exp")
        assert tags["git_commit"] == tags["mlflow.source.git.commit"] == baseline
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert parent.data.params["train.epochs"] == "2" and parent.data.params["model.hidden_size"] == "16"
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.info.status == "FINISHED"
    history = client.get_metric_history(child.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]
    artifacts = [a.path for a in client.list_artifacts(child.info.run_id)]
    assert "curves.csv" in artifacts


def test_ddp_on_two_cpu_processes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prepare_project(tmp_path, merged(train={"epochs": 1}), train=6)
    env = {**os.environ, "RVOS_TRACKING": "0", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(ROOT / "stages" / "train.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DDP: parameters identical on 2 processes" in result.stderr
    assert (tmp_path / paths.BEST_CHECKPOINT).is_file()


def test_missing_imagenet_weights_say_where_to_put_them(tmp_path, monkeypatch):
    import torchvision

    from rvos.errors import RvosError
    from rvos.model.encoder import imagenet_weights_file
    from rvos.training.loop import build_model

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    config = config_from_dict({"model": {"pretrained": "imagenet", "encoder": "resnet18"}})
    with pytest.raises(RvosError, match=r"resnet18-f37072fd\.pth.*hub/checkpoints|hub/checkpoints.*resnet18"):
        build_model(config)
    # a file in the hub cache (as torchvision would have downloaded it) is used, offline
    reference = torchvision.models.resnet18(weights=None)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / imagenet_weights_file("resnet18"))
    model = build_model(config)
    assert torch.equal(model.encoder.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    # an explicit path wins, and a file of another network is refused
    other = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), other)
    bad = config_from_dict(
        {"model": {"pretrained": "imagenet", "encoder": "resnet18", "weights_path": str(other)}}
    )
    with pytest.raises(RvosError, match="not resnet18 weights"):
        build_model(bad)


@pytest.mark.parametrize("damage", ["truncated", "pickled object", "other shapes", "not a dict"])
def test_bad_imagenet_weights_are_one_line(tmp_path, damage):
    import argparse

    import torchvision

    from rvos.errors import RvosError
    from rvos.training.loop import build_model

    weights = tmp_path / "resnet18.pth"
    state = torchvision.models.resnet18(weights=None).state_dict()
    if damage == "truncated":
        torch.save(state, weights)
        weights.write_bytes(weights.read_bytes()[:5000])
    elif damage == "pickled object":
        torch.save({**state, "args": argparse.Namespace(lr=1)}, weights)
    elif damage == "other shapes":  # the keys of resnet18, one tensor of another network's shape
        torch.save({**state, "conv1.weight": torch.zeros(32, 3, 7, 7)}, weights)
    else:
        torch.save([1, 2, 3], weights)
    config = config_from_dict(
        {"model": {"pretrained": "imagenet", "encoder": "resnet18", "weights_path": str(weights)}}
    )
    with pytest.raises(RvosError) as caught:
        build_model(config)
    message = str(caught.value)
    assert message.startswith(str(weights)) and "\n" not in message, message
    assert "weights_only" not in message and "resnet18" in message, message  # no advice to load it unsafely
    if damage == "other shapes":
        assert "size mismatch for conv1.weight" in message, message


def test_zero_shot_slot_assignment_rules():
    masks = torch.zeros(1, 10, 12, dtype=torch.long)
    masks[0, 6:9, 0:3] = 1  # lowest object
    masks[0, 1:3, 8:11] = 2  # topmost object
    masks[0, 3:5, 2:4] = 3
    probs = torch.zeros(1, 4, 10, 12)
    probs[0, 3] = (masks[0] == 1).float()  # only slot 3 predicts something: object 1
    probs[0, 0] = (masks[0] == 3).float()  # slot 0 predicts object 3
    first = zero_shot_slot_ids(probs, masks, 4, "first_slots")
    every = zero_shot_slot_ids(probs, masks, 4, "all_slots")
    reading = zero_shot_slot_ids(probs, masks, 4, "reading_order")
    assert first[0, 0] == 3 and first[0, 3] == 0 and sorted(first[0, 1:3].tolist()) == [1, 2]
    assert every[0, 0] == 3 and every[0, 3] == 1 and set(every[0].tolist()) == {0, 1, 2, 3}
    assert reading[0].tolist() == [2, 3, 1, 0]  # top to bottom, whatever the predictions
    assert zero_shot_slot_ids(probs, masks, 2, "reading_order")[0].tolist() == [2, 3]
    assert zero_shot_slot_ids(probs, torch.zeros_like(masks), 4, "all_slots")[0].tolist() == [0, 0, 0, 0]


def test_selection_follows_video_jf_not_clip_loss(tmp_path, monkeypatch):
    """Epoch 2 has the better clip loss, epoch 1 the better whole-video J&F: epoch 1 is kept."""
    from rvos.training import loop, video_validation

    monkeypatch.chdir(tmp_path)
    prepare_project(tmp_path, merged())
    clip_losses, video_jf, snapshots = iter([2.0, 1.0]), iter([0.8, 0.5]), []

    def clip_validation(model, *args):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(clip_losses), 0.5

    monkeypatch.setattr(loop, "validate", clip_validation)
    monkeypatch.setattr(
        video_validation, "validate_videos", lambda *a: dict.fromkeys(("J&F", "J", "F"), next(video_jf))
    )
    summary = train_stage(config_from_dict(merged()), StageRun())
    assert (summary["best_epoch"], summary["best_val_jf"], summary["best_val_loss"]) == (1, 0.8, 2.0)
    assert same_weights(weights(tmp_path / paths.BEST_CHECKPOINT), snapshots[0])
    assert not same_weights(snapshots[0], snapshots[1])


def test_video_validation_scores_what_is_segmented(tmp_path, monkeypatch):
    """Perfect id maps score 1; losing the objects half-way scores lower (both protocols)."""
    from rvos.config import InferConfig
    from rvos.data.dataset import LmdbVideos
    from rvos.training import video_validation

    monkeypatch.chdir(tmp_path)
    prepare_project(tmp_path, merged())
    videos = LmdbVideos(paths.LMDB)
    names = sorted(videos.videos)[:2]
    model = RVOS(ModelSpec("resnet18", 16, 3, 2, True))

    def run(mode: str, lose_from: int | None) -> float:
        order = iter(names)  # validate_videos segments the videos in this order

        class Oracle:  # segments like the ground truth, in place of rvos.segmenter.Segmenter
            def __init__(self, *args):
                self.name = next(order)

            def run(self, items):
                for t, _ in enumerate(items):
                    truth = videos.mask(self.name, t)
                    yield truth if lose_from is None or t < lose_from else np.zeros_like(truth)

        monkeypatch.setattr(video_validation, "Segmenter", Oracle)
        infer = InferConfig(split_components=False)
        return video_validation.validate_videos(model, videos, names, mode, infer)["J&F"]

    for mode in ("one_shot", "zero_shot"):
        assert run(mode, None) == pytest.approx(1.0)
        assert run(mode, 4) < 0.8


@pytest.mark.parametrize("mode", ["one_shot", "zero_shot"])
def test_too_many_objects_are_refused_before_training(tmp_path, monkeypatch, mode):
    """A test video with 3 objects and a 2-slot model: refused by the train stage before any epoch
    (infer would otherwise only fail after the training), naming the video and the id."""
    import shutil

    from tests.factories import write_davis_video

    monkeypatch.chdir(tmp_path)
    values = merged(mode=mode)
    prepare_project(tmp_path, values)
    raw = tmp_path / "data" / "raw"
    for folder in ("JPEGImages", "Annotations"):
        shutil.rmtree(raw / folder / "480p" / "val-1")
    write_davis_video(raw, "val-1", 8, (48, 80), objects=3, seed=99)  # only in the test split
    index_stage(config_from_dict(values), StageRun())

    result = subprocess.run(
        [sys.executable, "-m", "stages.train", "--params", "params.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    expected = "object id 3" if mode == "one_shot" else "3 objects"
    assert "video val-1 (test split)" in lines[0] and expected in lines[0]
    assert "model.max_objects >= 3" in lines[0]
    assert not (tmp_path / paths.BEST_CHECKPOINT).exists()
    assert not list(tmp_path.glob(".rvos/train/*/*.pt"))  # not a single epoch was trained
