"""DVC stage `split`: data/raw -> data/splits/{train,valid,test}.txt (+ YouTube-VOS meta files)."""

import logging

from rvos import paths
from rvos.atomic import atomic_dir
from rvos.config import Config
from rvos.data.layout import dataset_layout, write_list
from rvos.data.split import davis_splits, youtube_splits
from rvos.pipeline.tracking import StageRun

log = logging.getLogger(__name__)


def split_stage(config: Config, run: StageRun) -> None:
    """Write data/splits/{train,valid,test}.txt (and the YouTube-VOS meta files) from data/raw."""
    with atomic_dir(paths.SPLITS) as out:
        if dataset_layout(config.data.source) == "youtube":
            splits = youtube_splits(paths.RAW, config.split, config.seed, out)
        else:
            splits = davis_splits(paths.RAW, config.split, config.seed)
        for name, names in splits.items():
            write_list(out / f"{name}.txt", names)
    counts = {f"videos_{name}": len(names) for name, names in splits.items()}
    log.info("splits: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    run.log_metrics(counts)
