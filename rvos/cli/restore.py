"""`rvos restore`: after a failed `dvc repro` or `dvc exp run`, bring back the last good outputs."""

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:
    restore = commands.add_parser(
        "restore",
        help="after a failed run, restore every output that dvc.lock records (the last good results)",
        description="DVC deletes a stage's outputs before running it; when the stage then fails, this "
        "checks out every output dvc.lock still records: the cached ones (like dvc checkout) and the "
        "cache: false metrics, plots and reports, from the copies DVC's run-cache keeps. Params and "
        "code are left as they are.",
    )
    restore.add_argument("--root", default=".", help="the project (default: the current folder)")
    restore.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from rvos.pipeline.restore import restore_outputs

    written = restore_outputs(Path(args.root))
    for path in written:
        log.info("restored %s", path)
    log.info("%d output(s) restored; every output is what dvc.lock records", len(written))
