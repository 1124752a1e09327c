"""The training loop: build the model, its optimizers and loaders, then train and validate epoch by epoch.

- Two Adam groups: decoder + skip reductions (lr, weight_decay) and encoder (encoder_lr, ...).
- Training windows: `train.window_clips` consecutive clips of a video, trained one after the other
  with the recurrent state carried across (`rvos.training.objective.Window`); each clip has its own
  backward pass and optimizer step.
- Every `train.validate_every` epochs and after the last, validation on the `valid` split (never the
  scored `test` split): the clip loss and IoU (5-frame clips, own predictions fed back) and the
  whole-video J&F of `rvos.training.video_validation`; epochs in between have NaN there. The epoch
  with the highest video J&F is the best one.
- Everything that outlives an epoch (model, optimizers, RNG state, history, best weights) is saved
  after it in a `ResumeState`, so a killed run resumes and ends with the same weights.
- Deterministic: the same config, data and machine give the same weights (seeded init, seeded clip
  sampling and augmentation that do not depend on global state or the number of loader workers).
"""

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from rvos.config import Config, TrainConfig
from rvos.data.dataset import ClipDataset, LmdbVideos
from rvos.data.layout import dataset_layout
from rvos.device import autocast_for
from rvos.distributed import Distributed, check_replicas_agree
from rvos.model.checkpoint import state_dict_copy
from rvos.model.encoder import load_imagenet_weights
from rvos.model.rvos import RVOS, ModelSpec
from rvos.training import video_validation
from rvos.training.objective import (
    ClipPolicy,
    Window,
    epoch_policy,
    mean_iou,
    run_clips,
    takes_video_references,
)
from rvos.training.resume import ResumeState

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------- set-up helpers


def build_model(config: Config) -> RVOS:
    model = RVOS(ModelSpec.from_config(config.model, config.mode))
    if config.model.pretrained == "imagenet":
        load_imagenet_weights(model.encoder, config.model.encoder, config.model.weights_path)
    return model


def build_optimizers(model: RVOS, config: Config) -> list[torch.optim.Optimizer]:
    train = config.train
    return [
        torch.optim.Adam(model.decoder_parameters(), lr=train.lr, weight_decay=train.weight_decay),
        torch.optim.Adam(
            model.encoder_parameters(), lr=train.encoder_lr, weight_decay=train.encoder_weight_decay
        ),
    ]


def set_epoch_lr(optimizers: list[torch.optim.Optimizer], train: TrainConfig, epoch: int) -> float:
    """Set every group's lr for `epoch` from its base lr; -> the factor applied.

    A pure function of the epoch (no scheduler state), so a resumed run gets the same lrs.
    `cosine` decays from the base lr to 0 after the last epoch.
    """
    factor = 1.0
    if train.lr_schedule == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * epoch / train.epochs))
    bases = [train.lr, train.encoder_lr]
    for optimizer, base in zip(optimizers, bases, strict=True):
        for group in optimizer.param_groups:
            group["lr"] = base * factor
    return factor


def window_frames(train: TrainConfig, videos: LmdbVideos, names: list[str]) -> int:
    """Frames per training item: `window_clips` clips, fewer if the shortest video is shorter."""
    shortest = min(len(videos.videos[n].frames) for n in names if n in videos.videos)
    fitting = max(1, shortest // train.clip_len)
    return train.clip_len * min(train.window_clips, fitting)


def make_loaders(
    config: Config,
    videos: LmdbVideos,
    train_names: list[str],
    valid_names: list[str],
    ddp: Distributed,
    workers: int,
) -> tuple[ClipDataset, DataLoader, DataLoader]:
    train = config.train
    frames = window_frames(train, videos, train_names)
    reference = takes_video_references(config)  # one-shot: the objects' looks as inference has them
    # Windows of several clips are spread over each video; single clips keep the original's epoch.
    train_set = ClipDataset(
        videos,
        train_names,
        frames,
        train.augment,
        train.clips_per_video,
        config.seed,
        spread=frames > train.clip_len,
        reference=reference,
    )
    valid_set = ClipDataset(videos, valid_names, train.clip_len, reference=reference)
    drop_last = len(train_set) >= train.batch_size * ddp.world_size
    sampler = DistributedSampler(
        train_set,
        num_replicas=ddp.world_size,
        rank=ddp.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=drop_last,
    )
    # Workers are spawned, not forked: an LMDB environment must not cross a fork (py-lmdb refuses to
    # reopen a path that the parent had open), while a spawned worker opens its own.
    loader_options = {
        "num_workers": workers,
        "persistent_workers": workers > 0,
        "multiprocessing_context": "spawn" if workers > 0 else None,
    }
    train_loader = DataLoader(
        train_set, batch_size=train.batch_size, sampler=sampler, drop_last=drop_last, **loader_options
    )
    valid_loader = DataLoader(valid_set, batch_size=train.batch_size, **loader_options)
    return train_set, train_loader, valid_loader


@dataclass
class Trainer:
    """One training run's objects, built once by `build_trainer`."""

    config: Config
    videos: LmdbVideos
    valid_names: list[str]
    model: RVOS
    network: torch.nn.Module  # the model, or its DDP wrapper
    optimizers: list[torch.optim.Optimizer]
    train_set: ClipDataset
    train_loader: DataLoader
    valid_loader: DataLoader
    device: torch.device
    ddp: Distributed
    input_size: tuple[int, int]  # (H, W) of the LMDB frames, what the checkpoint will expect


def build_trainer(
    config: Config,
    videos: LmdbVideos,
    train_names: list[str],
    valid_names: list[str],
    device: torch.device,
    ddp: Distributed,
) -> Trainer:
    """The model (initialised from torch's global generator: seed it first), optimizers and loaders."""
    model = build_model(config).to(device)
    optimizers = build_optimizers(model, config)
    train_set, train_loader, valid_loader = make_loaders(
        config, videos, train_names, valid_names, ddp, config.runtime.num_workers
    )
    network = model
    if ddp.enabled:
        network = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return Trainer(
        config,
        videos,
        valid_names,
        model,
        network,
        optimizers,
        train_set,
        train_loader,
        valid_loader,
        device,
        ddp,
        (videos.height, videos.width),
    )


# ------------------------------------------------------------------------------------ epoch loops


def train_one_epoch(
    model: torch.nn.Module,
    spec: ModelSpec,
    loader: DataLoader,
    optimizers: list,
    device: torch.device,
    policy: ClipPolicy,
    show_progress: bool,
    epoch: int,
    precision: str,
    clip_len: int,
) -> tuple[float, float]:
    """-> (mean clip loss, clips per second). Each batch item is a window of consecutive clips."""
    model.train()
    total, clips, start = 0.0, 0, time.perf_counter()
    progress = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", disable=not show_progress)
    for batch in progress:
        chunks = split_window(batch, clip_len)
        window = Window() if len(chunks) > 1 else None
        for chunk in chunks:
            with autocast_for(device, precision):
                loss, *_ = run_clips(model, spec, chunk, device, policy, window)
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"training diverged: loss is {loss.item()} in epoch {epoch + 1}")
            size = chunk["images"].shape[0]
            total, clips = total + loss.item() * size, clips + size
        progress.set_postfix(
            loss=f"{total / clips:.4f}", clips_per_s=f"{clips / (time.perf_counter() - start):.2f}"
        )
    return total / max(clips, 1), clips / (time.perf_counter() - start)


def split_window(batch: dict, clip_len: int) -> list[dict]:
    """A batch of windows (B, W*clip_len frames) -> its consecutive clips, in order."""
    frames = batch["images"].shape[1]
    if frames == clip_len:
        return [batch]
    return [
        {
            **batch,
            "images": batch["images"][:, s : s + clip_len],
            "masks": batch["masks"][:, s : s + clip_len],
        }
        for s in range(0, frames, clip_len)
    ]


@torch.no_grad()
def validate(
    model: RVOS,
    loader: DataLoader,
    device: torch.device,
    policy: ClipPolicy,
    show_progress: bool,
    precision: str,
) -> tuple[float, float]:
    """Validation as inference runs: one-shot feeds its own predictions, zero-shot slots are matched.

    -> (mean clip loss, mean IoU)."""
    policy = dataclasses.replace(policy, teacher_forcing=False)
    model.eval()
    total, clips, iou_sum, iou_count = 0.0, 0, 0.0, 0
    for batch in tqdm(loader, desc="validate", unit="batch", disable=not show_progress, leave=False):
        with autocast_for(device, precision):
            loss, probs, targets, active = run_clips(model, model.spec, batch, device, policy)
        total, clips = total + loss.item() * len(probs), clips + len(probs)
        batch_iou, batch_count = mean_iou(probs, targets, active)
        iou_sum, iou_count = iou_sum + batch_iou, iou_count + batch_count
    return total / max(clips, 1), iou_sum / max(iou_count, 1)


# ------------------------------------------------------------------------------------------ fit


@dataclass
class TrainingResult:
    history: list[dict]  # one entry per epoch: the columns of reports/train/curves.csv
    best_epoch: int  # 1-based; the epoch with the highest whole-video validation J&F
    best_val_jf: float
    best_weights: dict  # state dict of that epoch (CPU copies)


def video_validation_due(epoch: int, train: TrainConfig) -> bool:
    """Every `validate_every` epochs (1-based) and always after the last one."""
    return (epoch + 1) % train.validate_every == 0 or epoch + 1 == train.epochs


def is_better(entry: dict, best: dict) -> bool:
    """Selection on what is scored: a higher video J&F wins; an epoch without one never does."""
    return not math.isnan(entry["val_jf"]) and entry["val_jf"] > best["val_jf"]


def fit(
    trainer: Trainer, resume: ResumeState, on_epoch: Callable[[dict, list[dict]], None]
) -> TrainingResult:
    """Train for `train.epochs` epochs (from the last finished one, if `resume` has it).

    After each epoch, rank 0 validates, calls `on_epoch(entry, history)` (the stage logs and writes
    its curves there) and saves the resume state; the other ranks only train.
    """
    config, model, ddp = trainer.config, trainer.model, trainer.ddp
    state = resume.load()
    if state is not None:
        model.load_state_dict(state["model"])
        for optimizer, saved in zip(trainer.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        torch.set_rng_state(state["rng"])
        start_epoch, history, best = state["epoch"], state["history"], state["best"]
    else:
        start_epoch, history, best = 0, [], {"val_jf": -math.inf, "epoch": -1, "model": None}
    if ddp.is_main:
        log.info(
            "training %s %s on %s: %d train clips/epoch, %d valid clips, input %dx%d",
            config.mode,
            config.model.encoder,
            trainer.device,
            len(trainer.train_set),
            len(trainer.valid_loader.dataset),
            *trainer.input_size,
        )

    layout = dataset_layout(config.data.source)
    for epoch in range(start_epoch, config.train.epochs):
        trainer.train_set.set_epoch(epoch)
        trainer.train_loader.sampler.set_epoch(epoch)
        lr_factor = set_epoch_lr(trainer.optimizers, config.train, epoch)
        policy = epoch_policy(config.train, epoch)
        train_loss, speed = train_one_epoch(
            trainer.network,
            model.spec,
            trainer.train_loader,
            trainer.optimizers,
            trainer.device,
            policy,
            ddp.is_main,
            epoch,
            config.train.precision,
            config.train.clip_len,
        )
        if ddp.is_main:
            val_loss = val_iou = math.nan
            video = {"J&F": math.nan, "J": math.nan, "F": math.nan}
            if video_validation_due(epoch, config.train):
                val_loss, val_iou = validate(
                    model, trainer.valid_loader, trainer.device, policy, True, config.train.precision
                )
                video = video_validation.validate_videos(
                    model, trainer.videos, trainer.valid_names, config.mode, config.infer, layout
                )
            entry = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_iou": val_iou,
                "val_jf": video["J&F"],
                "val_j": video["J"],
                "val_f": video["F"],
                "clips_per_s": speed,
                "teacher_forcing": policy.teacher_forcing,
                "lr": config.train.lr * lr_factor,
            }
            history.append(entry)
            if is_better(entry, best):
                best = {"val_jf": entry["val_jf"], "epoch": epoch + 1, "model": state_dict_copy(model)}
            on_epoch(entry, history)
            resume.save(
                {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizers": [o.state_dict() for o in trainer.optimizers],
                    "rng": torch.get_rng_state(),
                    "history": history,
                    "best": best,
                }
            )
        ddp.barrier()

    if ddp.enabled:
        if not check_replicas_agree(model, ddp):
            raise RuntimeError("DDP: the processes ended with different parameters")
        log.info("DDP: parameters identical on %d processes", ddp.world_size)
    if best["model"] is None:  # resumed after the last epoch had already been saved
        best["model"] = state_dict_copy(model)
    return TrainingResult(history, best["epoch"], best["val_jf"], best["model"])
