"""Downloading one large file over HTTP(S), resumably, with size and sha256 checks.

The file is streamed to `<dest>.part` and renamed to `dest` only after its size and hash are right,
so `dest` existing means "complete and verified". The `.part` survives an interrupted run (Ctrl-C,
dropped connection, DVC killing the stage) and the next run continues it with an HTTP Range request.

A small sidecar `<dest>.source.json` remembers which URL (and which server version of the file,
via ETag / Last-Modified) the bytes came from: a `.part` of another URL or of an older version of
the file on the server is never glued to new bytes.
"""

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import requests
from filelock import FileLock, Timeout
from tqdm import tqdm

from rvos.errors import RvosError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
TIMEOUT_S = (15, 60)  # (connect, read): a stalled server raises instead of hanging the stage forever
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0)  # one entry per retry after a dropped connection
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


class _TransientError(Exception):
    """A failure worth retrying (the bytes already on disk are kept and resumed)."""


def download_file(url: str, dest: Path, expected_size: int = 0, sha256: str = "") -> Path:
    """Download `url` to `dest` (resuming a previous `.part`), check size and sha256, return `dest`.

    `expected_size` 0 means "trust the size the server announces"; an empty `sha256` means the hash
    is computed and logged (so it can be pinned) but not checked. A mismatch raises `RvosError` and
    deletes the bad file so that the next run starts from scratch.
    """
    dest = Path(dest)
    sha256 = sha256.strip().lower()
    # Caught before the transfer: a typo in the pinned values would otherwise cost a whole download.
    if sha256 and not _SHA256.fullmatch(sha256):
        raise RvosError(f"{url}: expected sha256 {sha256!r} is not 64 hexadecimal digits")
    if expected_size < 0:
        raise RvosError(f"{url}: expected size {expected_size} is negative")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
        if dest.exists() and _cached_file_is_usable(url, dest, expected_size, sha256):
            log.info("%s: using the already downloaded file", dest)
            return dest
        part = _part_path(dest)
        total = _download_with_retries(url, dest, part, expected_size)
        _verify(url, dest, part, expected_size or total, sha256)
        os.replace(part, dest)
    log.info("%s: download complete (%d bytes)", dest, dest.stat().st_size)
    return dest


def discard_download(dest: Path) -> None:
    """Forget a download (file, partial file and its source note): the next run fetches it again."""
    for path in (dest, _part_path(dest), _sidecar_path(dest)):
        path.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (archives are GBs)."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with (
        open(path, "rb") as handle,
        tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=f"sha256 {path.name}") as bar,
    ):
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


# ------------------------------------------------------------------------------ cache and sidecar


@contextlib.contextmanager
def _exclusive(dest: Path) -> Iterator[None]:
    """One writer per cached file: parallel `dvc queue` workers would otherwise append to one .part."""
    lock = FileLock(str(dest) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("%s: another process is downloading this file; waiting for it", dest)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _part_path(dest: Path) -> Path:
    return dest.with_suffix(dest.suffix + ".part")


def _sidecar_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".source.json")


def _read_sidecar(dest: Path) -> dict:
    try:
        data = json.loads(_sidecar_path(dest).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_sidecar(dest: Path, url: str, validator: str) -> None:
    _sidecar_path(dest).write_text(json.dumps({"url": url, "validator": validator}) + "\n")


def _cached_file_is_usable(url: str, dest: Path, expected_size: int, sha256: str) -> bool:
    """A finished download is reused if it passes the checks we can make; otherwise it is deleted."""
    size = dest.stat().st_size
    if expected_size and size != expected_size:
        log.warning("%s: cached file has %d bytes, expected %d; downloading again", dest, size, expected_size)
    elif sha256:
        # A pinned hash identifies the content whatever its origin (a file copied in by hand is fine).
        actual = sha256_of(dest)
        if actual == sha256:
            return True
        log.warning("%s: cached file has sha256 %s, expected %s; downloading again", dest, actual, sha256)
    elif _read_sidecar(dest).get("url") == url:
        _log_unpinned_hash(url, dest)
        return True
    else:
        log.warning("%s: cached file does not come from %s; downloading again", dest, url)
    discard_download(dest)
    return False


# ------------------------------------------------------------------------------------- transfer


def _download_with_retries(url: str, dest: Path, part: Path, expected_size: int) -> int:
    """Fetch into `part`, resuming after dropped connections; return the file's total size (0 if unknown)."""
    with requests.Session() as session:
        retries = 0
        while True:
            try:
                return _fetch_once(session, url, dest, part, expected_size)
            except _TransientError as err:
                if retries == len(RETRY_DELAYS_S):
                    raise RvosError(
                        f"{url}: download failed after {retries + 1} attempts ({err}); run the stage "
                        f"again to resume from {part}"
                    ) from None
                delay = RETRY_DELAYS_S[retries]
                retries += 1
                log.warning("%s: %s; retry %d/%d in %.0f s", url, err, retries, len(RETRY_DELAYS_S), delay)
                time.sleep(delay)


def _fetch_once(session: requests.Session, url: str, dest: Path, part: Path, expected_size: int) -> int:
    """One HTTP request: continue `part` if the server allows it, else restart it."""
    sidecar = _read_sidecar(dest)
    if part.exists() and sidecar.get("url") != url:
        log.warning("%s: partial file is from another URL; starting over", part)
        part.unlink()
    offset = part.stat().st_size if part.exists() else 0
    # "identity": a transparently gunzipped body would not match Content-Length or the archive's hash.
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if sidecar.get("validator"):
            # If the file changed on the server since the .part was started, it answers 200 (whole file).
            headers["If-Range"] = sidecar["validator"]
    try:
        response = session.get(url, headers=headers, stream=True, timeout=TIMEOUT_S)
    except (requests.ConnectionError, requests.Timeout) as err:
        raise _TransientError(f"cannot connect ({type(err).__name__})") from None
    except requests.RequestException as err:
        raise RvosError(f"{url}: request failed ({err})") from None
    with response:
        return _handle_response(response, url, dest, part, offset, expected_size)


def _handle_response(
    response: requests.Response, url: str, dest: Path, part: Path, offset: int, expected_size: int
) -> int:
    status = response.status_code
    if status == 416 and offset:
        return _range_not_satisfiable(response, url, part, offset)
    if status in _RETRY_STATUS:
        raise _TransientError(f"server answered HTTP {status}")
    if status not in (200, 206):
        raise RvosError(f"{url}: server answered HTTP {status} {response.reason}")
    if response.headers.get("Content-Type", "").startswith("text/html"):
        # A login, error or "moved" page served with status 200: never an archive.
        raise RvosError(f"{url}: server sent an HTML page instead of the file (wrong URL, or a login page?)")
    if status == 206:
        start, total = _parse_content_range(response.headers.get("Content-Range", ""))
        if start != offset:
            part.unlink(missing_ok=True)
            raise _TransientError(f"server resumed at byte {start} instead of {offset}; starting over")
    else:
        if offset:
            log.warning("%s: server ignored the Range request; restarting from byte 0", url)
        offset = 0
        total = _content_length(response)
    if expected_size and total and total != expected_size:
        discard_download(dest)
        raise RvosError(f"{url}: server reports {total} bytes, expected {expected_size}")
    if offset == 0:
        _write_sidecar(dest, url, _validator(response))
    _stream_to(response, part, offset, total)
    return total


def _range_not_satisfiable(response: requests.Response, url: str, part: Path, offset: int) -> int:
    """HTTP 416: either the .part is already complete, or it is longer than the file (start over)."""
    _, total = _parse_content_range(response.headers.get("Content-Range", ""))
    if total == offset:
        log.info("%s: partial file is already complete", part)
        return total
    log.warning("%s: partial file (%d bytes) does not fit the server's file; starting over", part, offset)
    part.unlink(missing_ok=True)
    raise _TransientError("range not satisfiable")


def _stream_to(response: requests.Response, part: Path, offset: int, total: int) -> None:
    mode = "ab" if offset else "wb"
    received = offset
    with (
        open(part, mode) as handle,
        tqdm(
            total=total or None,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
        ) as bar,
    ):
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                handle.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
            # What arrived is flushed to the .part (the `with` closes it), so the retry resumes after it.
            raise _TransientError(f"connection lost after {received} bytes ({type(err).__name__})") from None
    if total and received < total:
        raise _TransientError(f"connection closed after {received} of {total} bytes")


def _parse_content_range(value: str) -> tuple[int, int]:
    """'bytes 100-199/1000' -> (100, 1000); 'bytes */1000' -> (-1, 1000); unknown parts are -1 / 0."""
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if not match:
        return -1, 0
    start = int(match.group(1)) if match.group(1) is not None else -1
    total = int(match.group(3)) if match.group(3) != "*" else 0
    return start, total


def _content_length(response: requests.Response) -> int:
    try:
        return max(int(response.headers.get("Content-Length", "0")), 0)
    except ValueError:
        return 0


def _validator(response: requests.Response) -> str:
    """A strong validator for If-Range: the ETag unless weak (RFC 9110 forbids those), else Last-Modified."""
    etag = response.headers.get("ETag", "")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified", "")


# ----------------------------------------------------------------------------------- verification


def _verify(url: str, dest: Path, part: Path, expected_size: int, sha256: str) -> None:
    size = part.stat().st_size
    if expected_size and size != expected_size:
        discard_download(dest)
        raise RvosError(f"{url}: downloaded {size} bytes, expected {expected_size}; deleted {part}")
    if sha256:
        actual = sha256_of(part)
        if actual != sha256:
            discard_download(dest)
            raise RvosError(f"{url}: sha256 is {actual}, expected {sha256}; deleted {part}")
    else:
        _log_unpinned_hash(url, part)


def _log_unpinned_hash(url: str, path: Path) -> None:
    log.warning(
        "%s: no sha256 given to check against; this file's sha256 is %s (pin it)", url, sha256_of(path)
    )
