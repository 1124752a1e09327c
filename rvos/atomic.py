"""Write outputs so that an interrupted stage never leaves a half-written result.

Everything is first written to a temporary sibling path (same filesystem) and then renamed into
place, which is atomic on POSIX. A crash or Ctrl-C leaves the previous output (or nothing) behind,
never a mixture.
"""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rvos.errors import RvosError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def check_creatable(out: Path) -> None:
    """`out` is a folder or can be made one: neither it nor any folder above it is a file.

    Commands call it before their work, so that a bad output path fails at once, not after it."""
    for path in [out, *out.parents]:
        if path.is_dir():
            return
        if path.exists() or path.is_symlink():
            if path == out:
                raise RvosError(f"{out}: output path is a file, not a folder")
            raise RvosError(f"{out}: cannot create the output folder: {path} is a file")


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        _remove(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Yield an open file whose content replaces `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        if final.is_dir():
            _remove(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(final: str | os.PathLike, data: bytes) -> None:
    """Atomically replace `final` with `data`."""
    with atomic_file(final, "wb") as handle:
        handle.write(data)


def write_text_atomic(final: str | os.PathLike, text: str) -> None:
    """Atomically replace `final` with `text` (UTF-8)."""
    with atomic_file(final, "w") as handle:
        handle.write(text)
