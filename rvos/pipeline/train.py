"""DVC stage `train`: data/lmdb + data/splits -> models/rvos.pt, reports/train/{curves.csv,summary.json}.

The wiring around `rvos.training.loop.fit`: device, threads and DDP set-up, the resume folder and its
lock, MLflow logging, and the files the stage writes. Under `torchrun` every rank trains; rank 0
validates, writes the outputs and tracks the run.
"""

import contextlib
import json
import logging

import torch
from filelock import FileLock

from rvos import paths
from rvos.atomic import write_text_atomic
from rvos.config import Config, config_to_dict
from rvos.data.dataset import LmdbVideos
from rvos.data.layout import read_list
from rvos.device import make_deterministic, resolve_device
from rvos.distributed import init_distributed, shutdown_distributed
from rvos.errors import RvosError
from rvos.model.checkpoint import model_payload
from rvos.model.torch_files import save_torch
from rvos.pipeline.tracking import StageRun
from rvos.training.loop import Trainer, TrainingResult, build_trainer, fit
from rvos.training.resume import ResumeState, resume_key

log = logging.getLogger(__name__)

CURVE_FIELDS = [
    "epoch",
    "train_loss",
    "val_loss",
    "val_iou",
    "val_jf",
    "val_j",
    "val_f",
    "clips_per_s",
    "teacher_forcing",
    "lr",
]


def train_stage(config: Config, run: StageRun) -> dict:
    """Train RVOS on data/lmdb (train split), validating on the valid split (returns the summary)."""
    device = resolve_device(config.runtime.device)
    if config.runtime.threads:
        torch.set_num_threads(config.runtime.threads)
    ddp = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", ddp.local_rank)
    make_deterministic(config.seed, device)
    videos = LmdbVideos(paths.LMDB)
    check_objects_fit(videos, config)
    splits = [paths.split_list("train"), paths.split_list("valid")]
    trainer = build_trainer(config, videos, read_list(splits[0]), read_list(splits[1]), device, ddp)

    key = resume_key(config, splits, paths.LMDB / "data.mdb")
    resume = ResumeState(paths.training_resume_root() / key, key)
    resume.folder.parent.mkdir(parents=True, exist_ok=True)
    # One run per resume folder at a time (two `dvc exp run --temp` of the same params would collide).
    lock = FileLock(str(resume.folder) + ".lock") if ddp.is_main else contextlib.nullcontext()
    summary = {}
    with lock:
        if ddp.is_main:
            as_dict = config_to_dict(config)
            run.log_params({"train": as_dict["train"], "model": as_dict["model"]})

        def on_epoch(entry: dict, history: list[dict]) -> None:
            log.info(
                "epoch %d: train loss %.4f, val loss %.4f, val IoU %.4f, val J&F %.4f, %.2f clips/s",
                entry["epoch"],
                entry["train_loss"],
                entry["val_loss"],
                entry["val_iou"],
                entry["val_jf"],
                entry["clips_per_s"],
            )
            run.log_metrics({k: float(v) for k, v in entry.items() if k != "epoch"}, step=entry["epoch"])
            write_curves(history)

        result = fit(trainer, resume, on_epoch)
        if ddp.is_main:
            summary = write_outputs(trainer, result, run)
            resume.clear()
    ddp.barrier()
    shutdown_distributed(ddp)
    return summary


def check_objects_fit(videos: LmdbVideos, config: Config) -> None:
    """Refuse, before any training, a video of the train, valid or test split with more objects than
    the model has slots: training would silently treat the extra objects as background, and infer
    would only find out after the whole training (it segments the test split with these weights).
    One-shot slot k holds object id k (so the highest id counts); zero-shot slots take the objects in
    any order (so their number counts)."""
    slots = config.model.max_objects
    for split in ("train", "valid", "test"):
        listed = paths.split_list(split)
        for name in read_list(listed):
            info = videos.videos.get(name)
            if info is None:
                raise RvosError(f"{paths.LMDB}: video {name} of {listed} is not in the index (re-run index)")
            ids = info.all_objects
            if config.mode == "one_shot" and ids and ids[-1] > slots:
                raise RvosError(
                    f"{paths.LMDB}: video {name} ({split} split) has object id {ids[-1]} but the model has "
                    f"{slots} slots (one per id): set model.max_objects >= {ids[-1]}"
                )
            if config.mode == "zero_shot" and len(ids) > slots:
                raise RvosError(
                    f"{paths.LMDB}: video {name} ({split} split) has {len(ids)} objects (ids {ids}) but the "
                    f"model has {slots} slots: set model.max_objects >= {len(ids)}"
                )


def write_outputs(trainer: Trainer, result: TrainingResult, run: StageRun) -> dict:
    """The best epoch's checkpoint, the curves and the summary; the same to MLflow."""
    config, model = trainer.config, trainer.model
    model.load_state_dict(result.best_weights)
    best = result.history[[e["epoch"] for e in result.history].index(result.best_epoch)]
    # The inference settings it was validated with travel with the weights (`rvos demo` uses them).
    info = {
        "epoch": result.best_epoch,
        "val_jf": result.best_val_jf,
        "epochs": config.train.epochs,
        "infer": config_to_dict(config)["infer"],
    }
    save_torch(paths.BEST_CHECKPOINT, model_payload(model, trainer.input_size, config.mode, info))
    write_curves(result.history)
    summary = {
        "best_epoch": result.best_epoch,
        "best_val_jf": result.best_val_jf,
        "best_val_loss": best["val_loss"],
        "final_val_jf": result.history[-1]["val_jf"],
    }
    write_text_atomic(paths.TRAIN_SUMMARY, json.dumps(summary, indent=2) + "\n")
    run.log_metrics(summary)
    run.log_artifact(paths.CURVES)
    run.log_run_artifacts([paths.CURVES, paths.TRAIN_SUMMARY], "train")
    log.info(
        "best epoch %d (video J&F %.4f) -> %s", result.best_epoch, result.best_val_jf, paths.BEST_CHECKPOINT
    )
    return summary


def write_curves(history: list[dict]) -> None:
    rows = [",".join(CURVE_FIELDS)]
    for entry in history:
        rows.append(",".join(_csv_value(entry[field]) for field in CURVE_FIELDS))
    write_text_atomic(paths.CURVES, "\n".join(rows) + "\n")


def _csv_value(value: float | int | bool) -> str:
    return str(int(value)) if isinstance(value, bool | int) else f"{value:.6f}"
