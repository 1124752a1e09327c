"""Running one DVC stage: parse `--params`, load the config, track the run, report user errors.

`stages/<name>.py` (what `dvc.yaml` calls) and `rvos <name>` (the console script) both end up in
`run_stage`, so the two entry points cannot drift apart.
"""

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator

from rvos.config import Config, load_config
from rvos.errors import RvosError
from rvos.logs import setup_logging
from rvos.tracking import StageRun, stage_run

log = logging.getLogger("rvos")

StageBody = Callable[[Config, StageRun], None]


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn `RvosError` into one log line and exit status 2; Ctrl-C into status 130."""
    try:
        yield
    except RvosError as err:
        log.error("%s", err)
        sys.exit(2)
    except KeyboardInterrupt:
        log.error("interrupted")
        sys.exit(130)


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
    parser = argparse.ArgumentParser(prog=f"stages/{name}.py", description=(body.__doc__ or "").strip())
    add_stage_arguments(parser)
    args = parser.parse_args(argv)
    execute_stage(name, body, args.params, args.verbose)
