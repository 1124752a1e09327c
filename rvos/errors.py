"""The one exception type that means "the user gave us something wrong".

Every check on user input (params, files, archives, checkpoints) raises `RvosError` with a one-line
message that names the offending file or key and says what is wrong. Every entry point (the `rvos`
command, the stage scripts) wraps its work in `exit_on_user_error`, which turns it into that one line
on stderr and exit status 2, without a traceback.
"""

import contextlib
import logging
import sys
from collections.abc import Iterator

log = logging.getLogger("rvos")


class RvosError(Exception):
    """A problem with the user's input, reported as one line (no traceback)."""


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
