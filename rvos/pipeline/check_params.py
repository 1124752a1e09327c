"""DVC stage `check-params`: refuse a bad `params.yaml` before any stage deletes its outputs.

`dvc.yaml` lists `params.yaml` as a *file* dependency of this stage, so any edit of the file (even
a typo in a section no stage reads, such as `runtime`) re-runs the check, and `download` depends
on this stage's output, so DVC runs the check first. The output is the list of known keys: it does
not depend on the values, so a valid edit changes nothing downstream.
"""

import argparse
import json
import logging

from rvos import paths
from rvos.atomic import write_text_atomic
from rvos.config import Config, config_to_dict, flatten, load_config
from rvos.errors import exit_on_user_error
from rvos.logs import setup_logging

log = logging.getLogger(__name__)


def known_keys() -> list[str]:
    """Every key `params.yaml` may set, dotted (`train.augment.flip`)."""
    return sorted(flatten(config_to_dict(Config())))


def check_params(params: str) -> None:
    """Validate the params file (duplicate, unknown and out-of-range keys); write the key list."""
    load_config(params)
    write_text_atomic(paths.PARAMS_SCHEMA, json.dumps({"keys": known_keys()}, indent=1) + "\n")
    log.info("%s: valid", params)


def main(argv: list[str] | None = None) -> None:
    description = __doc__.splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m stages.check_params", description=description)
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    with exit_on_user_error():
        check_params(args.params)
