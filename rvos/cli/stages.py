"""`rvos <stage>`: each DVC stage, run exactly as `python -m stages.<name>` runs it."""

import argparse
import importlib

from rvos.pipeline import STAGES
from rvos.pipeline.runner import add_stage_arguments, execute_stage


def register(commands: argparse._SubParsersAction) -> None:
    for name, (_, help_text) in STAGES.items():
        stage = commands.add_parser(name, help=f"stage: {help_text}", description=f"DVC stage: {help_text}.")
        add_stage_arguments(stage)
        stage.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    module_name, function_name = STAGES[args.command][0].split(":")
    body = getattr(importlib.import_module(module_name), function_name)
    execute_stage(args.command.replace("-", "_"), body, args.params, args.verbose)
