"""The `rvos` command: one subcommand per pipeline stage, plus tools that work outside the pipeline.

Each module of this package registers its subcommands (argparse only) and holds their handlers:
argument glue that calls the library. Heavy modules (torch, mlflow) are imported inside the
handlers, so that `rvos --help` is instant.
"""

import argparse
import sys

from rvos.cli import bench, demo, evaluate, models, restore, stages
from rvos.errors import exit_on_user_error
from rvos.logs import setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rvos",
        description="RVOS video object segmentation: pipeline stages and tools.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (stages, restore, evaluate, demo, models, bench):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    with exit_on_user_error():
        args.handler(args)


if __name__ == "__main__":
    main(sys.argv[1:])
