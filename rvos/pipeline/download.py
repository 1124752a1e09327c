"""DVC stage `download`: the dataset named by `data.source` -> data/raw."""

import logging

from rvos import paths
from rvos.config import Config
from rvos.data.sources import install_source, raw_counts
from rvos.pipeline.tracking import StageRun

log = logging.getLogger(__name__)


def download_stage(config: Config, run: StageRun) -> None:
    """Fetch, generate or copy the dataset selected by `data.source` into data/raw."""
    source = config.data.source
    install_source(config.data, config.seed, paths.RAW, paths.project_root(), paths.download_cache())
    counts = raw_counts(source, paths.RAW)
    log.info("data/raw: %s", ", ".join(f"{key}={value}" for key, value in counts.items()))
    run.log_params({"download.source": source})
    run.log_metrics(counts)
