"""The `train` stage: RVOS training as in the original (spec section 3), made reproducible and resumable.

- Loss: per frame, the mean soft IoU over slots that hold an object plus the empty-slot term
  (rvos.losses), summed over the clip's frames, one backward pass per clip (full BPTT).
- One-shot: slot k is object k+1. Epochs < `teacher_forcing_epochs` feed the ground-truth mask of the
  previous frame, later ones the model's own detached prediction (the original's "ST+").
- Zero-shot: slots are matched to the objects of each clip's first frame (Hungarian), and that
  matching is kept for the clip's later frames. A pairwise overlap term (`overlap_weight`) makes two
  slots segmenting the same object cost directly.
- Two Adam groups: decoder + skip reductions (lr, weight_decay) and encoder (encoder_lr, ...).
- Each epoch ends with validation on the `valid` split (never the scored `test` split); the checkpoint
  with the lowest validation loss is `models/rvos.pt`; curves go to `reports/train/curves.csv`.
- Killed and re-run, training resumes from its last finished epoch (model, optimizers, RNG state,
  history) in `<repo>/.rvos/train/<key>/` and ends with the same weights as an uninterrupted run.
"""

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass

import torch
from filelock import FileLock
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from rvos import paths
from rvos.atomic import write_text_atomic
from rvos.config import Config, TrainConfig, config_to_dict
from rvos.data.dataset import ClipDataset, LmdbVideos
from rvos.data.split import read_list
from rvos.distributed import Distributed, check_replicas_agree, init_distributed, shutdown_distributed
from rvos.losses import frame_loss, match_slots, pixel_bce_loss, slot_overlap_loss
from rvos.model.checkpoint import load_torch, model_payload, save_torch
from rvos.model.encoder import load_imagenet_weights
from rvos.model.rvos import RVOS, ModelSpec
from rvos.tracking import StageRun, project_root

log = logging.getLogger(__name__)

CURVES = paths.TRAIN_REPORTS / "curves.csv"
CURVE_FIELDS = ["epoch", "train_loss", "val_loss", "val_iou", "clips_per_s", "teacher_forcing", "lr"]


# --------------------------------------------------------------------------------- set-up helpers


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from rvos.errors import RvosError

        raise RvosError("params: runtime.device = cuda but no CUDA device is available")
    return torch.device(name)


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast where the hardware does bf16 natively (CUDA; CPUs with AVX512-BF16/AMX).

    On such CPUs it trains about 1.7x faster than fp32; elsewhere bf16 would be emulated, so fp32.
    """
    if precision != "bf16":
        return contextlib.nullcontext()
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_deterministic(seed: int, device: torch.device) -> None:
    torch.manual_seed(seed)
    if device.type == "cpu":
        # CPU kernels are deterministic; warn_only covers the few ops without a deterministic twin.
        torch.use_deterministic_algorithms(True, warn_only=True)


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


# ------------------------------------------------------------------------------ targets and loss


def slot_targets(masks: torch.Tensor, slot_ids: torch.Tensor) -> torch.Tensor:
    """masks (B, T, H, W) ids, slot_ids (B, S) id per slot (0 = none) -> (B, T, S, H, W) binary."""
    targets = masks[:, :, None] == slot_ids[:, None, :, None, None]
    return (targets & (slot_ids[:, None, :, None, None] > 0)).float()


def one_shot_slot_ids(objects: torch.Tensor, num_slots: int) -> torch.Tensor:
    """objects (B, 256) flags of the ids in each video -> (B, S): slot k holds id k+1 if present."""
    ids = torch.arange(1, num_slots + 1, device=objects.device)
    return torch.where(objects[:, 1 : num_slots + 1], ids, torch.zeros_like(ids))


def zero_shot_slot_ids(
    first_probs: torch.Tensor,  # (B, S, H, W) predictions for each clip's first frame
    first_masks: torch.Tensor,  # (B, H, W) ids of each clip's first frame
    num_slots: int,
    matching: str,
) -> torch.Tensor:
    """Which object each slot is trained on, decided on the clip's first frame -> (B, S) ids.

    `first_slots` / `all_slots`: Hungarian matching of the predictions to the objects, over the first
    N slots (the original) or over every slot. `reading_order`: no matching; slot k gets the k-th object
    in reading order of its topmost pixel (then leftmost), a target the model can compute from the
    image, so a slot is never trained towards an object it had no way to single out.
    """
    slot_ids = torch.zeros(first_masks.shape[0], num_slots, dtype=torch.long, device=first_masks.device)
    for b in range(first_masks.shape[0]):
        ids = [int(i) for i in torch.unique(first_masks[b]) if i > 0]
        if not ids:
            continue
        objects = torch.stack([first_masks[b] == i for i in ids])
        if matching == "reading_order":
            first_pixel = [int(obj.flatten().nonzero()[0]) for obj in objects]  # row-major: top, then left
            ordered = [i for _, i in sorted(zip(first_pixel, ids))][:num_slots]
            slot_ids[b, : len(ordered)] = torch.tensor(ordered)
            continue
        ids, objects = ids[:num_slots], objects[:num_slots]
        for obj, slot in enumerate(match_slots(first_probs[b], objects, matching == "all_slots")):
            slot_ids[b, slot] = ids[obj]
    return slot_ids


@dataclass(frozen=True)
class ClipPolicy:
    """How clips are fed and scored in one epoch (training) or in validation."""

    empty_weight: float
    overlap_weight: float = 0.0  # zero-shot: cost of two slots covering the same pixels
    bce_weight: float = 0.0  # per-pixel cross-entropy next to soft IoU
    zero_shot_matching: str = "first_slots"  # which slot is trained on which object (zero_shot_slot_ids)
    teacher_forcing: bool = False  # one-shot: ground-truth previous masks instead of predictions


def num_slots_for(batch: dict, spec: ModelSpec) -> int:
    """One-shot decodes only up to the highest object id in the batch; zero-shot needs every slot."""
    if not spec.one_shot:
        return spec.max_objects
    present = batch["objects"][:, 1 : spec.max_objects + 1].any(dim=0).nonzero()
    return int(present.max()) + 1 if len(present) else 1


def run_clips(
    model: torch.nn.Module, spec: ModelSpec, batch: dict, device: torch.device, policy: ClipPolicy
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward a batch of clips -> (loss, probs (B,T,S,H,W), targets, active (B,S))."""
    images = batch["images"].to(device, non_blocking=True).float() / 255.0
    masks = batch["masks"].to(device, non_blocking=True).long()
    num_slots = num_slots_for(batch, spec)
    if spec.one_shot:
        slot_ids = one_shot_slot_ids(batch["objects"].to(device), num_slots)
        targets = slot_targets(masks, slot_ids)
        logits = model(images, num_slots, targets, policy.teacher_forcing)
        active = slot_ids > 0
    else:
        logits = model(images, num_slots)
        slot_ids = zero_shot_slot_ids(
            torch.sigmoid(logits[:, 0].float()), masks[:, 0], num_slots, policy.zero_shot_matching
        )
        targets = slot_targets(masks, slot_ids)
        active = torch.ones_like(slot_ids, dtype=torch.bool)
    probs = torch.sigmoid(logits.float())
    frames = range(probs.shape[1])
    loss = sum(frame_loss(probs[:, t], targets[:, t], active, policy.empty_weight) for t in frames)
    if policy.bce_weight > 0:
        loss = loss + policy.bce_weight * sum(
            pixel_bce_loss(logits[:, t].float(), targets[:, t], active) for t in frames
        )
    if not spec.one_shot and policy.overlap_weight > 0:
        loss = loss + policy.overlap_weight * sum(slot_overlap_loss(probs[:, t]) for t in frames)
    return loss, probs, targets, active


def mean_iou(probs: torch.Tensor, targets: torch.Tensor, active: torch.Tensor) -> tuple[float, int]:
    """Sum of thresholded IoUs over (clip, frame, slot) with an object, and their count."""
    pred = probs > 0.5
    truth = targets > 0.5
    inter = (pred & truth).flatten(3).sum(-1).float()
    union = (pred | truth).flatten(3).sum(-1).float()
    scored = active[:, None, :] & (truth.flatten(3).any(-1))
    return float((inter / union.clamp(min=1))[scored].sum()), int(scored.sum())


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
) -> tuple[float, float]:
    """-> (mean clip loss, clips per second)."""
    model.train()
    total, clips, start = 0.0, 0, time.perf_counter()
    progress = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", disable=not show_progress)
    for batch in progress:
        with autocast_for(device, precision):
            loss, *_ = run_clips(model, spec, batch, device, policy)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"training diverged: loss is {loss.item()} in epoch {epoch + 1}")
        size = batch["images"].shape[0]
        total, clips = total + loss.item() * size, clips + size
        progress.set_postfix(
            loss=f"{total / clips:.4f}", clips_per_s=f"{clips / (time.perf_counter() - start):.2f}"
        )
    return total / max(clips, 1), clips / (time.perf_counter() - start)


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


# ------------------------------------------------------------------------------------ resumption


def resume_key(config: Config, videos: LmdbVideos) -> str:
    """Identity of a training run: params that change the result + the data it reads."""
    params = {k: config_to_dict(config)[k] for k in ("mode", "seed", "model", "train", "index")}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for split in ("train", "valid"):
        digest.update((paths.SPLITS / f"{split}.txt").read_bytes())
    digest.update(str((videos.path / "data.mdb").stat().st_size).encode())
    return digest.hexdigest()[:16]


class ResumeState:
    """The last finished epoch of a run, kept outside DVC outputs (DVC deletes those before a re-run)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.folder = project_root() / ".rvos" / "train" / key
        self.path = self.folder / "last.pt"

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        state = load_torch(self.path, "training state")
        if state.get("key") != self.key:
            return None
        log.info("resuming from %s (epoch %d finished)", self.path, state["epoch"])
        return state

    def save(self, state: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        save_torch(self.path, {**state, "key": self.key})

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ train


def make_loaders(
    config: Config, videos: LmdbVideos, ddp: Distributed
) -> tuple[ClipDataset, DataLoader, DataLoader]:
    train = config.train
    train_set = ClipDataset(
        videos,
        read_list(paths.SPLITS / "train.txt"),
        train.clip_len,
        train.augment,
        train.clips_per_video,
        config.seed,
    )
    valid_set = ClipDataset(videos, read_list(paths.SPLITS / "valid.txt"), train.clip_len)
    drop_last = len(train_set) >= train.batch_size * ddp.world_size
    sampler = DistributedSampler(
        train_set,
        num_replicas=ddp.world_size,
        rank=ddp.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=drop_last,
    )
    workers = config.runtime.num_workers
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


def write_curves(history: list[dict]) -> None:
    rows = [",".join(CURVE_FIELDS)]
    for entry in history:
        rows.append(",".join(_csv_value(entry[field]) for field in CURVE_FIELDS))
    write_text_atomic(CURVES, "\n".join(rows) + "\n")


def _csv_value(value: float | int | bool) -> str:
    return str(int(value)) if isinstance(value, bool | int) else f"{value:.6f}"


def train(config: Config, run: StageRun) -> dict:
    """Train with the config's params; write models/rvos.pt and reports/train/. -> summary dict."""
    device = resolve_device(config.runtime.device)
    if config.runtime.threads:
        torch.set_num_threads(config.runtime.threads)
    ddp = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", ddp.local_rank)
    make_deterministic(config.seed, device)
    videos = LmdbVideos(paths.LMDB)
    model = build_model(config).to(device)
    optimizers = build_optimizers(model, config)
    train_set, train_loader, valid_loader = make_loaders(config, videos, ddp)
    network = (
        DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if ddp.enabled
        else model
    )
    input_size = (videos.height, videos.width)

    resume = ResumeState(resume_key(config, videos))
    lock = FileLock(str(resume.folder) + ".lock") if ddp.is_main else contextlib.nullcontext()
    resume.folder.parent.mkdir(parents=True, exist_ok=True)
    with lock:
        state = resume.load()
        if state is not None:
            model.load_state_dict(state["model"])
            for optimizer, saved in zip(optimizers, state["optimizers"]):
                optimizer.load_state_dict(saved)
            torch.set_rng_state(state["rng"])
            start_epoch, history, best = state["epoch"], state["history"], state["best"]
        else:
            start_epoch, history, best = 0, [], {"val_loss": math.inf, "epoch": -1, "model": None}
        if ddp.is_main:
            run.log_params(
                {"train": config_to_dict(config)["train"], "model": config_to_dict(config)["model"]}
            )
            log.info(
                "training %s %s on %s: %d train clips/epoch, %d valid clips, input %dx%d",
                config.mode,
                config.model.encoder,
                device,
                len(train_set),
                len(valid_loader.dataset),
                *input_size,
            )
        for epoch in range(start_epoch, config.train.epochs):
            train_set.set_epoch(epoch)
            train_loader.sampler.set_epoch(epoch)
            lr_factor = set_epoch_lr(optimizers, config.train, epoch)
            policy = ClipPolicy(
                config.train.empty_weight,
                config.train.overlap_weight,
                config.train.bce_weight,
                config.train.zero_shot_matching,
                teacher_forcing=epoch < config.train.teacher_forcing_epochs,
            )
            train_loss, speed = train_one_epoch(
                network,
                model.spec,
                train_loader,
                optimizers,
                device,
                policy,
                ddp.is_main,
                epoch,
                config.train.precision,
            )
            if ddp.is_main:
                val_loss, val_iou = validate(
                    model,
                    valid_loader,
                    device,
                    policy,
                    True,
                    config.train.precision,
                )
                entry = {
                    "epoch": epoch + 1,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_iou": val_iou,
                    "clips_per_s": speed,
                    "teacher_forcing": policy.teacher_forcing,
                    "lr": config.train.lr * lr_factor,
                }
                history.append(entry)
                log.info(
                    "epoch %d: train loss %.4f, val loss %.4f, val IoU %.4f, %.2f clips/s",
                    epoch + 1,
                    train_loss,
                    val_loss,
                    val_iou,
                    speed,
                )
                run.log_metrics({k: float(v) for k, v in entry.items() if k != "epoch"}, step=epoch + 1)
                if val_loss < best["val_loss"]:
                    best = {
                        "val_loss": val_loss,
                        "epoch": epoch + 1,
                        "model": model_payload(model, input_size, config.mode)["model"],
                    }
                write_curves(history)
                resume.save(
                    {
                        "epoch": epoch + 1,
                        "model": model.state_dict(),
                        "optimizers": [o.state_dict() for o in optimizers],
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
        summary = {}
        if ddp.is_main:
            summary = finish(model, best, history, input_size, config, run)
            resume.clear()
    ddp.barrier()
    shutdown_distributed(ddp)
    return summary


def finish(
    model: RVOS, best: dict, history: list[dict], input_size: tuple[int, int], config: Config, run: StageRun
) -> dict:
    """Write the best checkpoint and the curves; log the summary and the curves to MLflow."""
    if best["model"] is None:  # resumed after the last epoch had already been saved
        best["model"] = model_payload(model, input_size, config.mode)["model"]
    model.load_state_dict(best["model"])
    info = {"epoch": best["epoch"], "val_loss": best["val_loss"], "epochs": config.train.epochs}
    save_torch(paths.BEST_CHECKPOINT, model_payload(model, input_size, config.mode, info))
    write_curves(history)
    summary = {
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
        "final_val_iou": history[-1]["val_iou"],
    }
    write_text_atomic(paths.TRAIN_REPORTS / "summary.json", json.dumps(summary, indent=2) + "\n")
    run.log_metrics(summary)
    run.log_artifact(CURVES)
    log.info("best epoch %d (val loss %.4f) -> %s", best["epoch"], best["val_loss"], paths.BEST_CHECKPOINT)
    return summary


def train_stage(config: Config, run: StageRun) -> None:
    """Train RVOS on data/lmdb (train split), validating on the valid split."""
    train(config, run)
