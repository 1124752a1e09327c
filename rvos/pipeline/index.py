"""DVC stage `index`: data/raw + data/splits -> data/lmdb (frames and masks pre-resized)."""

import logging
import os

from rvos import paths
from rvos.atomic import atomic_dir
from rvos.config import Config
from rvos.data.layout import dataset_layout, read_list
from rvos.data.lmdb_index import write_index
from rvos.data.origin import local_dataset_prefix, name_user_files
from rvos.errors import RvosError
from rvos.pipeline.tracking import StageRun

log = logging.getLogger(__name__)


def index_stage(config: Config, run: StageRun) -> None:
    """Build data/lmdb from data/raw for every video of data/splits."""
    names = sorted({n for split in ("train", "valid", "test") for n in read_list(paths.split_list(split))})
    workers = config.runtime.num_workers or min(4, os.cpu_count() or 1)
    layout = dataset_layout(config.data.source)
    try:
        with atomic_dir(paths.LMDB) as out:
            write_index(paths.RAW, layout, names, config.index, out, workers)
            size_mb = (out / "data.mdb").stat().st_size / 2**20
    except RvosError as err:
        if config.data.source != "local":
            raise
        # name the user's own file, not its copy under data/raw
        prefix = local_dataset_prefix(config.data.local.path, paths.project_root())
        raise RvosError(name_user_files(str(err), paths.RAW, prefix)) from None
    log.info("indexed %d videos into %s (%.1f MB)", len(names), paths.LMDB, size_mb)
    run.log_metrics({"videos": len(names), "lmdb_mb": size_mb})
