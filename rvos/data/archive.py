"""Extracting dataset archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) without trusting them.

An archive from the internet or from a colleague may contain members that write outside the
destination (`../x`, `/etc/x`, links pointing out of it), device files, or be truncated. Every
member is checked and refused with an `RvosError` naming the archive and the member. Extraction goes
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

from tqdm import tqdm

from rvos.atomic import atomic_dir
from rvos.errors import RvosError

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_ZIP_SUFFIXES = (".zip",)
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_ENCRYPTED = 0x1
_CHUNK = 1 << 20
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


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract `archive` into `dest` (replaced as a whole), refusing unsafe or corrupt archives."""
    archive = Path(archive)
    kind = archive_kind(archive)
    if not kind:
        supported = ", ".join(_ZIP_SUFFIXES + _TAR_SUFFIXES)
        raise RvosError(f"{archive}: not a supported archive type (expected one of {supported})")
    if not archive.is_file():
        raise RvosError(f"{archive}: archive file is missing")
    with atomic_dir(dest) as tmp:
        if kind == "zip":
            _extract_zip(archive, tmp)
        else:
            _extract_tar(archive, tmp)


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


# ------------------------------------------------------------------------------------------ zip


def _extract_zip(archive: Path, tmp: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            # Every name is checked before the first byte is written.
            for info in members:
                _check_zip_member(archive, info)
            _check_unique(archive, [info.filename for info in members])
            _check_free_space(archive, tmp, sum(info.file_size for info in members))
            for info in tqdm(members, desc=f"extract {archive.name}", unit=" files"):
                zf.extract(info, tmp)
    except _CORRUPT as err:
        raise CorruptArchiveError(f"{archive}: archive is corrupt or truncated ({err})") from None
    except OSError as err:
        raise RvosError(f"{archive}: cannot extract into {tmp.parent} ({err.strerror or err})") from None


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


def _extract_tar(archive: Path, tmp: Path) -> None:
    # One pass: members are checked and extracted as they are read, which avoids decompressing a
    # large .tar.gz twice. A refusal half-way is still safe: the temporary directory is dropped.
    member = None
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tqdm(tf, desc=f"extract {archive.name}", unit=" files"):
                _check_tar_member(archive, member)
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
