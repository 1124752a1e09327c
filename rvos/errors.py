"""The one exception type that means "the user gave us something wrong".

Every check on user input (params, files, archives, checkpoints) raises `RvosError` with a one-line
message that names the offending file or key and says what is wrong. The CLI turns it into that one
line on stderr and a non-zero exit status, without a traceback.
"""


class RvosError(Exception):
    """A problem with the user's input, reported as one line (no traceback)."""
