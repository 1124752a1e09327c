"""Extracting dataset archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) without trusting them.

An archive from the internet or from a colleague may contain members that write outside the
destination (`../x`, `/etc/x`, links pointing out of it), device files, or be truncated. Every
member is checked and refused with an `RvosError` naming the archive and the member. Decompression
bombs (a small archive that expands to fill the disk) are refused by the sizes in the headers before
anything is written (zip: all members, tar: each member before it is written, the running total with
it), and the bytes a zip member really decompresses to are counted while they are written, so a zip
whose headers lie is stopped at its declared size or the limits (`data.archive`). Extraction goes
to a temporary sibling of `dest` that replaces `dest` only when everything succeeded, so a refused
or broken archive leaves nothing half-extracted behind.

File contents are written exactly as stored; nothing is renamed or re-encoded, which keeps the
extracted tree byte-identical from one run to the next.
"""

import lzma
import posixpath
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from rvos.atomic import atomic_dir
from rvos.config import ArchiveConfig
from rvos.errors import RvosError

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_ZIP_SUFFIXES = (".zip",)
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_ENCRYPTED = 0x1
_CHUNK = 1 << 20
_MB = 1 << 20
# What a damaged compressed stream or archive raises from the standard library.
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, NotImplementedError)


class CorruptArchiveError(RvosError):
    """The archive file itself is damaged (truncated download, flipped bytes, not an archive)."""


def archive_kind(path: Path) -> str:
    """'zip', 'tar' or '' (not an archive we extract), from the file name."""
    name = Path(path).name.lower()
    if name.endswith(_ZIP_SUFFIXES):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    return ""


def safe_extract(archive: Path, dest: Path, limits: ArchiveConfig = ArchiveConfig()) -> None:
    """Extract `archive` into `dest` (replaced as a whole), refusing unsafe, corrupt or oversized
    archives (`limits`: the `data.archive` params)."""
    archive = Path(archive)
    kind = archive_kind(archive)
    if not kind:
        supported = ", ".join(_ZIP_SUFFIXES + _TAR_SUFFIXES)
        raise RvosError(f"{archive}: not a supported archive type (expected one of {supported})")
    if not archive.is_file():
        raise RvosError(f"{archive}: archive file is missing")
    with atomic_dir(dest) as tmp:
        if kind == "zip":
            _extract_zip(archive, tmp, _Budget(archive, limits))
        else:
            _extract_tar(archive, tmp, _Budget(archive, limits))


def member_names(archive: Path) -> list[str]:
    """The member names of a zip or tar archive (nothing is extracted)."""
    try:
        if archive_kind(archive) == "zip":
            with zipfile.ZipFile(archive) as zf:
                return zf.namelist()
        with tarfile.open(archive, "r:*") as tf:
            return tf.getnames()
    except (*_CORRUPT, OSError) as err:
        raise CorruptArchiveError(f"{archive}: cannot list the archive ({err})") from None


def _refuse(archive: Path, member: str, reason: str) -> RvosError:
    return RvosError(f"{archive}: refusing member {member!r}: {reason}")


def _check_member_path(archive: Path, member: str, path: str, what: str = "path") -> None:
    """Refuse absolute paths and `..` components (also in Windows spelling, which some zips use)."""
    normalized = path.replace("\\", "/")
    if not normalized or "\x00" in normalized:
        raise _refuse(archive, member, f"empty or invalid {what}")
    if normalized.startswith("/") or _DRIVE.match(normalized):
        raise _refuse(archive, member, f"absolute {what} {path!r}")
    if ".." in normalized.split("/"):
        raise _refuse(archive, member, f"'..' in {what} {path!r}")


# ---------------------------------------------------------------------------------------- sizes


class _Budget:
    """The `data.archive` limits on the uncompressed bytes of one archive, and what is used so far."""

    def __init__(self, archive: Path, limits: ArchiveConfig) -> None:
        self.archive = archive
        self.total_limit = limits.max_total_mb * _MB
        self.member_limit = limits.max_member_mb * _MB
        self.used = 0

    def declare(self, member: str, size: int) -> None:
        """Refuse a member whose header size alone breaks a limit (nothing of it is written)."""
        if size > self.member_limit:
            raise _refuse(
                self.archive,
                member,
                f"{size} bytes uncompressed, above data.archive.max_member_mb = {self.member_limit // _MB} "
                "(a decompression bomb? raise the limit if the archive is genuine)",
            )
        if self.used + size > self.total_limit:
            raise RvosError(
                f"{self.archive}: the archive extracts to more than data.archive.max_total_mb = "
                f"{self.total_limit // _MB} MiB (at member {member!r}; a decompression bomb? raise the "
                "limit if the archive is genuine)"
            )
        self.used += size


def copy_limited(source: BinaryIO, target: BinaryIO, declared: int, archive: Path, member: str) -> None:
    """Copy a member's decompressed stream, refusing it as soon as it yields more than its header
    declared (`declared` was checked against the limits, so the limits hold whatever the stream does)."""
    written = 0
    while chunk := source.read(_CHUNK):
        written += len(chunk)
        if written > declared:
            raise _refuse(
                archive, member, f"decompresses to more than the {declared} bytes its header declares"
            )
        target.write(chunk)


# ------------------------------------------------------------------------------------------ zip


def _extract_zip(archive: Path, tmp: Path, budget: _Budget) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            # Every name and size is checked before the first byte is written.
            for info in members:
                _check_zip_member(archive, info)
                budget.declare(info.filename, info.file_size)
            _check_unique(archive, [info.filename for info in members])
            _check_free_space(archive, tmp, budget.used)
            for info in tqdm(members, desc=f"extract {archive.name}", unit=" files"):
                _write_zip_member(zf, info, tmp, archive)
    except _CORRUPT as err:
        raise CorruptArchiveError(f"{archive}: archive is corrupt or truncated ({err})") from None
    except OSError as err:
        raise RvosError(f"{archive}: cannot extract into {tmp.parent} ({err.strerror or err})") from None


def _write_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, tmp: Path, archive: Path) -> None:
    # Names were checked (no absolute path, no '..'), so joining them to `tmp` stays inside it.
    target = tmp / info.filename
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as source, open(target, "wb") as out:
        copy_limited(source, out, info.file_size, archive, info.filename)


def _check_zip_member(archive: Path, info: zipfile.ZipInfo) -> None:
    _check_member_path(archive, info.filename, info.filename)
    mode = info.external_attr >> 16  # Unix mode, when the zip was made on Unix
    if stat.S_ISLNK(mode):
        # zipfile would write the link target as a regular file's content: wrong data either way.
        raise _refuse(archive, info.filename, "symbolic links in zip archives are not supported")
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _refuse(archive, info.filename, "special file (device, fifo or socket)")
    if info.flag_bits & _ZIP_ENCRYPTED:
        raise _refuse(archive, info.filename, "encrypted member")


def _check_unique(archive: Path, names: list[str]) -> None:
    # Two members with one name: which content wins depends on the extractor, so refuse.
    seen = set()
    for name in names:
        key = name.rstrip("/")
        if key in seen:
            raise _refuse(archive, name, "appears twice in the archive")
        seen.add(key)


def _check_free_space(archive: Path, tmp: Path, needed: int) -> None:
    free = shutil.disk_usage(tmp).free
    if needed > free:
        raise RvosError(
            f"{archive}: extracting needs {needed} bytes but only {free} are free in {tmp.parent}"
        )


# ------------------------------------------------------------------------------------------ tar


def _extract_tar(archive: Path, tmp: Path, budget: _Budget) -> None:
    # One pass: members are checked and extracted as they are read, which avoids decompressing a
    # large .tar.gz twice. A refusal half-way is still safe: the temporary directory is dropped.
    # tarfile writes exactly the header's size of a member (a sparse member's expanded size), so
    # checking each header before its member is written keeps the writes within the limits.
    member = None
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tqdm(tf, desc=f"extract {archive.name}", unit=" files"):
                _check_tar_member(archive, member)
                if member.isreg():
                    budget.declare(member.name, member.size)
                # The "data" filter re-checks against the real file system (e.g. a path that goes
                # through a symlink extracted earlier) and drops ownership and special mode bits.
                tf.extract(member, tmp, filter="data")
            _check_tar_end(archive, tf)
    except tarfile.FilterError as err:
        name = err.tarinfo.name if err.tarinfo is not None else "?"
        raise _refuse(archive, name, str(err)) from None
    except _CORRUPT as err:
        raise CorruptArchiveError(f"{archive}: archive is corrupt or truncated ({err})") from None
    except OSError as err:
        where = f" at member {member.name!r}" if member is not None else ""
        raise RvosError(f"{archive}: cannot extract{where} ({err.strerror or err})") from None


def _check_tar_member(archive: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    _check_member_path(archive, name, name)
    if member.issym():
        if member.linkname.startswith("/"):
            raise _refuse(archive, name, f"symbolic link to absolute path {member.linkname!r}")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        if target == ".." or target.startswith("../"):
            raise _refuse(archive, name, f"symbolic link {member.linkname!r} points outside the archive")
    elif member.islnk():
        # Hard link targets are archive member names.
        _check_member_path(archive, name, member.linkname, "hard link target")
    elif not (member.isreg() or member.isdir()):
        raise _refuse(archive, name, "special file (device or fifo)")


def _check_tar_end(archive: Path, tf: tarfile.TarFile) -> None:
    """A tar cut exactly between two members reads like a shorter valid archive: require the end marker."""
    fileobj = tf.fileobj
    fileobj.seek(tf.offset)
    if fileobj.read(tarfile.BLOCKSIZE) != tarfile.NUL * tarfile.BLOCKSIZE:
        raise CorruptArchiveError(f"{archive}: archive is truncated (no end-of-archive marker)")
    # Reading a compressed stream to its end makes gzip/bz2/xz verify their checksum and length.
    while fileobj.read(_CHUNK):
        pass
