"""`rvos bench loader` and `rvos bench train`: speed figures for docs/benchmarks.md.

Each benchmark times its candidates in the same process, interleaved, and reports medians and the
ratio to the anchor measured in the same run, because the machines are shared and noisy.
"""

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from rvos import paths
from rvos.config import load_config
from rvos.data.dataset import ClipDataset, LmdbVideos, RawVideos
from rvos.data.split import dataset_layout, read_list
from rvos.losses import frame_loss
from rvos.model.rvos import PAPER_SPEC, RVOS, ModelSpec
from rvos.train import autocast_for, resolve_device


def median_rate(run: Callable[[], int], repeats: int) -> tuple[float, list[float]]:
    """Call `run` (returns how many items it processed) `repeats` times -> (median items/s, all rates)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates), rates


def bench_loader_command(args: argparse.Namespace) -> None:
    """Clips/s of the same clips read from the raw JPEG/PNG folders and from the LMDB index."""
    config = load_config(args.params)
    names = read_list(paths.SPLITS / "train.txt")
    lmdb_videos = LmdbVideos(paths.LMDB)
    raw_videos = RawVideos(
        paths.RAW, dataset_layout(config.data.source), names, lmdb_videos.height, lmdb_videos.width
    )
    clip_len = config.train.clip_len
    readers = {
        "raw folders": ClipDataset(raw_videos, names, clip_len),
        "lmdb": ClipDataset(lmdb_videos, names, clip_len),
    }
    count = min(args.clips, len(readers["lmdb"]))

    def read_clips(dataset: ClipDataset) -> Callable[[], int]:
        def run() -> int:
            for i in range(count):
                dataset[i % len(dataset)]
            return count

        return run

    for dataset in readers.values():  # warm the page cache for both, so neither pays first-touch I/O
        read_clips(dataset)()
    rates: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(args.repeats):  # interleaved, so background load hits both alike
        for name, dataset in readers.items():
            rates[name].append(median_rate(read_clips(dataset), 1)[0])
    anchor = statistics.median(rates["raw folders"])
    print(
        f"loader: {count} clips of {clip_len} frames at {lmdb_videos.height}x{lmdb_videos.width}, "
        f"median of {args.repeats} (single process, no augmentation)"
    )
    for name, values in rates.items():
        median = statistics.median(values)
        print(
            f"  {name:<12} {median:8.1f} clips/s   x{median / anchor:5.2f}   runs: "
            + ", ".join(f"{v:.1f}" for v in values)
        )


def _training_step(
    model: RVOS,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    masks: torch.Tensor,
    device: torch.device,
    precision: str,
) -> None:
    with autocast_for(device, precision):
        logits = model(images, masks.shape[2], masks if model.spec.one_shot else None, teacher_forcing=True)
    probs = torch.sigmoid(logits.float())
    active = torch.ones(masks.shape[0], masks.shape[2], dtype=torch.bool, device=device)
    loss = sum(frame_loss(probs[:, t], masks[:, t], active, 1.0) for t in range(masks.shape[1]))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def time_training(
    spec: ModelSpec,
    size: tuple[int, int],
    batch: int,
    clip_len: int,
    device: torch.device,
    precision: str,
    steps: int,
) -> tuple[float, list[float]]:
    """Median training clips/s of one model on random clips (after one warm-up step)."""
    torch.manual_seed(0)
    model = RVOS(spec).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    images = torch.rand(batch, clip_len, 3, *size, device=device)
    masks = (torch.rand(batch, clip_len, spec.max_objects, *size, device=device) > 0.9).float()

    def step() -> int:
        _training_step(model, optimizer, images, masks, device, precision)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return batch

    step()  # warm-up: allocator, oneDNN / cuDNN kernel selection
    return median_rate(step, steps)


def bench_train_command(args: argparse.Namespace) -> None:
    """Training clips/s (forward, BPTT, Adam step) for the params' model and the paper preset."""
    config = load_config(args.params)
    device = resolve_device(args.device)
    presets = {
        "params": (
            ModelSpec.from_config(config.model, config.mode),
            (config.index.height, config.index.width),
        ),
        "paper": (ModelSpec(**PAPER_SPEC, one_shot=config.mode == "one_shot"), (256, 448)),
    }
    batch, clip_len = config.train.batch_size, config.train.clip_len
    results = {
        name: time_training(spec, size, batch, clip_len, device, config.train.precision, args.steps)
        for name, (spec, size) in presets.items()
    }
    anchor = results["params"][0]
    print(
        f"train: batch {batch} clips x {clip_len} frames, {config.mode}, {device}, "
        f"train.precision {config.train.precision}, "
        f"median of {args.steps} steps"
    )
    for name, (median, rates) in results.items():
        spec, (height, width) = presets[name]
        print(
            f"  {name:<7} {spec.encoder:<9} hidden {spec.hidden_size:<3} {spec.max_objects:>2} slots "
            f"{height}x{width}: {median:7.2f} clips/s  x{median / anchor:5.2f}   runs: "
            + ", ".join(f"{r:.2f}" for r in rates)
        )
