"""Running one DVC stage: parse `--params`, load the config, track the run, report user errors.

`stages/<name>.py` (what `dvc.yaml` calls) and `rvos <name>` (the console script) both end up in
`execute_stage`, so the two entry points cannot drift apart.
"""

import argparse
from collections.abc import Callable
from typing import Any

from rvos.config import Config, load_config
from rvos.errors import exit_on_user_error
from rvos.logs import setup_logging
from rvos.pipeline.tracking import StageRun, stage_run

StageBody = Callable[[Config, StageRun], Any]


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def execute_stage(name: str, body: StageBody, params: str, verbose: bool = False) -> None:
    setup_logging(verbose)
    with exit_on_user_error():
        config = load_config(params)
        with stage_run(name, config, params) as run:
            body(config, run)


def run_stage(name: str, body: StageBody, argv: list[str] | None = None) -> None:
    """Entry point of `stages/<name>.py`."""
    parser = argparse.ArgumentParser(
        prog=f"python -m stages.{name}", description=(body.__doc__ or "").strip()
    )
    add_stage_arguments(parser)
    args = parser.parse_args(argv)
    execute_stage(name, body, args.params, args.verbose)
