"""`rvos bench loader`: clips/s reading the same clips from the raw folders and from the LMDB index."""

import statistics
from collections.abc import Callable
from pathlib import Path

from rvos import paths
from rvos.bench import median_rate
from rvos.config import load_config
from rvos.data.dataset import ClipDataset, LmdbVideos, RawVideos
from rvos.data.layout import dataset_layout, read_list


def bench_loader(params: Path, clips: int, repeats: int) -> list[str]:
    """Clips/s of the same clips read from the raw JPEG/PNG folders and from the LMDB index of the
    pipeline's data (run `dvc repro index` first) -> the report's lines."""
    config = load_config(params)
    names = read_list(paths.split_list("train"))
    lmdb_videos = LmdbVideos(paths.LMDB)
    raw_videos = RawVideos(
        paths.RAW, dataset_layout(config.data.source), names, lmdb_videos.height, lmdb_videos.width
    )
    clip_len = config.train.clip_len
    readers = {
        "raw folders": ClipDataset(raw_videos, names, clip_len),
        "lmdb": ClipDataset(lmdb_videos, names, clip_len),
    }
    count = min(clips, len(readers["lmdb"]))

    def read_clips(dataset: ClipDataset) -> Callable[[], int]:
        def run() -> int:
            for i in range(count):
                dataset[i % len(dataset)]
            return count

        return run

    for dataset in readers.values():  # warm the page cache for both, so neither pays first-touch I/O
        read_clips(dataset)()
    rates: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(repeats):  # interleaved, so background load hits both alike
        for name, dataset in readers.items():
            rates[name].append(median_rate(read_clips(dataset), 1)[0])
    anchor = statistics.median(rates["raw folders"])
    lines = [
        f"loader: {count} clips of {clip_len} frames at {lmdb_videos.height}x{lmdb_videos.width}, "
        f"median of {repeats} (single process, no augmentation)"
    ]
    for name, values in rates.items():
        median = statistics.median(values)
        lines.append(
            f"  {name:<12} {median:8.1f} clips/s   x{median / anchor:5.2f}   runs: "
            + ", ".join(f"{v:.1f}" for v in values)
        )
    return lines
