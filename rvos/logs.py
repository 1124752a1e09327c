"""Logging set-up shared by every command: one format, tqdm-friendly."""

import logging
import sys


def setup_logging(verbose: bool = False) -> None:
    """Log INFO (DEBUG with `verbose`) to stderr; quieten chatty third-party loggers."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("alembic", "mlflow", "urllib3", "PIL", "git", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
