"""Write outputs so that an interrupted stage never leaves a half-written result.

Everything is first written to a temporary sibling path (same filesystem) and then renamed into
place, which is atomic on POSIX. A crash or Ctrl-C leaves the previous output (or nothing) behind,
never a mixture.

A SIGKILL runs no clean-up, so its temporary sibling (`.<name>.tmp-XXXXXXXX`) would stay forever.
The run that owns a temporary holds an exclusive `flock` on it (released by the kernel when the
process dies, however it dies), and the next write of the same output removes the siblings of its
own pattern that nobody holds any more: a temporary of a live run is never touched. A sweep that
catches a new temporary between its creation and its lock can delete it; its creator, which locks
it and then checks that the path is still the folder (or file) it locked, then makes another one.
"""

import contextlib
import fcntl
import glob
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rvos.errors import RvosError

log = logging.getLogger(__name__)
SUFFIX = re.compile(r"[a-z0-9_]{8}")  # what tempfile appends to the prefix


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


def temp_prefix(final: Path, kind: str = "tmp") -> str:
    """`.<name>.<kind>-`: the temporaries of `final` are this prefix plus tempfile's 8 characters."""
    return f".{final.name}.{kind}-"


def _is(path: Path, fd: int) -> bool:
    """Whether `path` is (still) the file or folder open as `fd`."""
    try:
        here = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    there = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def remove_stale_temps(final: str | os.PathLike, kind: str = "tmp") -> None:
    """Remove the `.<name>.<kind>-*` siblings of `final` that no live process holds."""
    final = Path(final)
    prefix = temp_prefix(final, kind)
    if not final.parent.is_dir():
        return
    for stale in sorted(final.parent.glob(f"{glob.escape(prefix)}*")):
        if stale.is_symlink() or not SUFFIX.fullmatch(stale.name.removeprefix(prefix)):
            continue  # not one of ours
        try:
            fd = os.open(stale, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue  # its owner finished and renamed or removed it meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.debug("keeping %s: a running process holds it", stale)
        else:
            if _is(stale, fd):
                log.info("removing %s, left behind by a killed run", stale)
                _remove(stale)
        finally:
            os.close(fd)


def _create_locked(final: Path, kind: str, directory: bool) -> tuple[Path, int]:
    """A new temporary sibling and the descriptor that holds its lock."""
    for _ in range(100):
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(final, kind), dir=final.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=temp_prefix(final, kind), dir=final.parent)
            os.close(fd)
            tmp = Path(name)
        try:
            owner = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue  # another run's sweep took it before we could lock it
        fcntl.flock(owner, fcntl.LOCK_EX)  # waits only for a sweep that is looking at it
        if _is(tmp, owner):
            os.chmod(tmp, (0o777 if directory else 0o666) & ~_umask())  # mkstemp/mkdtemp give 0600/0700
            return tmp, owner
        os.close(owner)
    raise OSError(f"{final.parent}: cannot create a temporary for {final.name}")


@contextlib.contextmanager
def owned_temp(final: str | os.PathLike, kind: str = "tmp", directory: bool = True) -> Iterator[Path]:
    """A new temporary sibling of `final` (an empty folder or file), locked by this process while
    the block runs and removed after it unless the block moved it away; stale ones go first."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final, kind)
    tmp, owner = _create_locked(final, kind, directory)
    try:
        yield tmp
    finally:
        try:
            if _is(tmp, owner):
                _remove(tmp)
        finally:
            os.close(owner)  # the lock goes only after the rename or the removal


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces `final` only if the block succeeds."""
    final = Path(final)
    with owned_temp(final, directory=True) as tmp:
        yield tmp
        _remove(final)
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Yield an open file whose content replaces `final` only if the block succeeds."""
    final = Path(final)
    with owned_temp(final, directory=False) as tmp:
        with open(tmp, mode) as handle:
            yield handle
        if final.is_dir():
            _remove(final)
        os.replace(tmp, final)


def write_bytes_atomic(final: str | os.PathLike, data: bytes) -> None:
    """Atomically replace `final` with `data`."""
    with atomic_file(final, "wb") as handle:
        handle.write(data)


def write_text_atomic(final: str | os.PathLike, text: str) -> None:
    """Atomically replace `final` with `text` (UTF-8)."""
    with atomic_file(final, "w") as handle:
        handle.write(text)
