"""DVC stage `format-submission`: outputs/predictions -> outputs/submission.zip (the servers' layout)."""

import json
import logging

from rvos import paths
from rvos.atomic import write_bytes_atomic
from rvos.config import Config
from rvos.data.dataset import LmdbVideos
from rvos.data.layout import dataset_layout, read_list
from rvos.pipeline.tracking import StageRun
from rvos.submission import davis_entries, deterministic_zip, youtube_entries

log = logging.getLogger(__name__)


def format_submission_stage(config: Config, run: StageRun) -> None:
    """Zip outputs/predictions into outputs/submission.zip in the official server layout."""
    if dataset_layout(config.data.source) == "youtube":
        meta_path = paths.SPLITS / "train-val-meta.json"
        entries = youtube_entries(paths.PREDICTIONS, json.loads(meta_path.read_text()))
    else:
        videos = LmdbVideos(paths.LMDB)
        names = read_list(paths.split_list("test"))
        frames = {name: list(videos.videos[name].frames) for name in names}
        sizes = {name: videos.videos[name].size for name in names}
        entries = davis_entries(paths.PREDICTIONS, frames, sizes)
    data = deterministic_zip(entries)
    write_bytes_atomic(paths.SUBMISSION, data)
    log.info("wrote %s: %d masks, %.1f MB", paths.SUBMISSION, len(entries), len(data) / 2**20)
    run.log_metrics({"submission_files": len(entries)})
