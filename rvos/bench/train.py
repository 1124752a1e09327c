"""`rvos bench train`: training clips/s (forward, BPTT, Adam step) of the params' model and the paper
preset, on random clips, in the same process (the ratio to the params' model is the figure to quote).
"""

from pathlib import Path

import torch

from rvos.bench import median_rate
from rvos.config import load_config
from rvos.device import autocast_for, resolve_device
from rvos.losses import frame_loss
from rvos.model.rvos import PAPER_SPEC, RVOS, ModelSpec
from rvos.training.objective import takes_video_references


def _training_step(
    model: RVOS,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    masks: torch.Tensor,
    device: torch.device,
    precision: str,
    reference: bool = False,
) -> None:
    """One step on a fixed batch; `reference`: with the one-shot reference frame training reads
    (`train.reference_frame: video`), here the clips' first frames."""
    given = masks if model.spec.one_shot else None
    extra = (images[:, 0], masks[:, 0]) if reference else (None, None)
    with autocast_for(device, precision):
        logits = model(images, masks.shape[2], given, True, None, *extra)
    probs = torch.sigmoid(logits.float())
    active = torch.ones(masks.shape[0], masks.shape[2], dtype=torch.bool, device=device)
    loss = sum(frame_loss(probs[:, t], masks[:, t], active, 1.0) for t in range(masks.shape[1]))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _random_training(
    spec: ModelSpec, size: tuple[int, int], batch: int, clip_len: int, device: torch.device
) -> tuple[RVOS, torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    """A seeded model, its optimizer, and random clips (B, T, 3, H, W) with masks (B, T, slots, H, W)."""
    torch.manual_seed(0)
    model = RVOS(spec).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    images = torch.rand(batch, clip_len, 3, *size, device=device)
    masks = (torch.rand(batch, clip_len, spec.max_objects, *size, device=device) > 0.9).float()
    return model, optimizer, images, masks


def time_training(
    spec: ModelSpec,
    size: tuple[int, int],
    batch: int,
    clip_len: int,
    device: torch.device,
    precision: str,
    steps: int,
    reference: bool = False,
) -> tuple[float, list[float]]:
    """Median training clips/s of one model on random clips (after one warm-up step)."""
    model, optimizer, images, masks = _random_training(spec, size, batch, clip_len, device)

    def step() -> int:
        _training_step(model, optimizer, images, masks, device, precision, reference)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return batch

    step()  # warm-up: allocator, oneDNN / cuDNN kernel selection
    return median_rate(step, steps)


def bench_train(params: Path, steps: int, device_name: str) -> list[str]:
    """Training clips/s for the params' model and the paper preset -> the report's lines."""
    config = load_config(params)
    device = resolve_device(device_name)
    presets = {
        "params": (
            ModelSpec.from_config(config.model, config.mode),
            (config.index.height, config.index.width),
        ),
        "paper": (ModelSpec(**PAPER_SPEC, one_shot=config.mode == "one_shot"), (256, 448)),
    }
    batch, clip_len = config.train.batch_size, config.train.clip_len
    reference = {"params": takes_video_references(config), "paper": False}  # the paper preset: the original
    results = {
        name: time_training(
            spec, size, batch, clip_len, device, config.train.precision, steps, reference[name]
        )
        for name, (spec, size) in presets.items()
    }
    anchor = results["params"][0]
    lines = [
        f"train: batch {batch} clips x {clip_len} frames, {config.mode}, {device}, "
        f"train.precision {config.train.precision}, "
        f"median of {steps} steps"
    ]
    for name, (median, rates) in results.items():
        spec, (height, width) = presets[name]
        lines.append(
            f"  {name:<7} {spec.encoder:<9} hidden {spec.hidden_size:<3} {spec.max_objects:>2} slots "
            f"{height}x{width}: {median:7.2f} clips/s  x{median / anchor:5.2f}   runs: "
            + ", ".join(f"{r:.2f}" for r in rates)
        )
    return lines


def profile_training_step(params: Path, device_name: str, rows: int = 15) -> list[str]:
    """Where one training step of the params' model spends its time: torch.profiler's operators by
    self time (after a warm-up step), so that speed work starts from measured shares."""
    from torch.profiler import ProfilerActivity, profile

    config = load_config(params)
    device = resolve_device(device_name)
    spec = ModelSpec.from_config(config.model, config.mode)
    size = (config.index.height, config.index.width)
    batch, clip_len = config.train.batch_size, config.train.clip_len
    model, optimizer, images, masks = _random_training(spec, size, batch, clip_len, device)
    reference = takes_video_references(config)
    _training_step(model, optimizer, images, masks, device, config.train.precision, reference)  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        _training_step(model, optimizer, images, masks, device, config.train.precision, reference)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    header = (
        f"train step profile: batch {batch} clips x {clip_len} frames, {config.mode}, {device}, "
        f"train.precision {config.train.precision}, {spec.encoder} hidden {spec.hidden_size} "
        f"{spec.max_objects} slots {size[0]}x{size[1]}"
    )
    return [header, prof.key_averages().table(sort_by=sort, row_limit=rows)]
