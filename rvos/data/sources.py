"""Dataset sources: bring the dataset named by `data.source` into the raw-data folder (`data/raw`).

- `synthetic`: generate the embedded procedural dataset (DAVIS-2017 layout).
- `davis2017`: download the official archive (resumable, size/sha256-checked) into the persistent
  cache `<project root>/.rvos/downloads/`, extract it safely and keep its `DAVIS/` folder.
- `youtubevos`: a local archive or folder with `train/` and `valid/` (YouTube-VOS needs a login, so it
  is never downloaded); only those two folders are kept.
- `local`: the user's own videos, already in the DAVIS-2017 layout (a folder, or an archive of one).

`data/raw` is replaced atomically: after a failure or Ctrl-C it is either the previous complete dataset
or absent, never a partial one. File contents are exactly those of the archive or folder, so the same
input always gives the same `data/raw` (and the same DVC hash), whatever the extraction order or time.
The download cache lives outside `data/raw` because DVC deletes outputs before re-running a stage, and
at the project root (`$DVC_ROOT`) so that `--temp`/`--queue` runs share it and can resume it; the
caller passes both folders (`rvos.paths`).
"""

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

from tqdm import tqdm

from rvos.atomic import atomic_dir
from rvos.config import ArchiveConfig, DataConfig
from rvos.data.archive import CorruptArchiveError, archive_kind, safe_extract
from rvos.data.download import discard_download, download_file
from rvos.data.layout import (
    YOUTUBE_SUBSETS,
    LayoutNotFoundError,
    check_davis_layout,
    check_youtube_layout,
    davis_sequence_lists,
    find_dataset_root,
    read_youtube_meta,
)
from rvos.errors import RvosError

log = logging.getLogger(__name__)

Check = Callable[[Path], None]


def install_source(data: DataConfig, seed: int, raw: Path, root: Path, cache: Path) -> None:
    """Fetch, generate or copy the dataset selected by `data.source` into `raw`.

    `root` resolves the user's relative paths (the project root, not the cwd: `dvc exp run --temp`
    runs in a temporary copy); `cache` keeps downloaded archives between runs.
    """
    source = data.source
    remove_stale_temp_dirs(raw)
    log.info("download: source %s -> %s", source, raw)
    if source == "synthetic":
        _install_synthetic(data, seed, raw)
    elif source == "davis2017":
        _install_davis2017(data, raw, cache)
    elif source == "youtubevos":
        # Only train/ and valid/: the release also has test/ and *_all_frames/ (tens of GB) RVOS never reads.
        path = _user_path(data.youtubevos.path, "data.youtubevos.path", root)
        _install_user_dataset(
            path, "data.youtubevos.path", check_youtube_layout, YOUTUBE_SUBSETS, raw, data.archive
        )
    elif source == "local":
        path = _user_path(data.local.path, "data.local.path", root)
        _install_user_dataset(path, "data.local.path", check_davis_layout, None, raw, data.archive)
    else:  # config.py only lets the four names above through
        raise RvosError(f"params: data.source = {source!r} is not supported")


# -------------------------------------------------------------------------------------- sources


def _install_synthetic(data: DataConfig, seed: int, raw: Path) -> None:
    # Imported here: the generator pulls in drawing code that the other sources never need.
    from rvos.data.synthetic import generate_synthetic_davis

    with atomic_dir(raw) as out:
        generate_synthetic_davis(data.synthetic, seed, out)
        check_davis_layout(out)


def _install_davis2017(data: DataConfig, raw: Path, cache: Path) -> None:
    section = data.davis2017
    url = section.url.strip()
    if not url:
        raise RvosError("params: data.davis2017.url is empty; set it to the DAVIS-2017 trainval archive URL")
    parsed = urlparse(url)
    name = Path(unquote(parsed.path)).name
    if parsed.scheme not in ("http", "https") or not archive_kind(Path(name)):
        raise RvosError(
            f"params: data.davis2017.url = {url!r} must be an http(s) URL of a .zip or .tar archive"
        )
    archive = download_file(url, cache / name, section.size_bytes, section.sha256)
    try:
        _install_archive(archive, check_davis_layout, None, raw, data.archive)
    except CorruptArchiveError as err:
        if section.sha256:
            raise  # the file is the pinned one: downloading it again cannot help
        # Without a pinned hash a damaged download (a proxy cutting it, say) would be reused forever.
        discard_download(archive)
        raise RvosError(f"{err} (deleted the download; the next run fetches it again)") from None


def _install_user_dataset(
    path: Path, key: str, check: Check, keep: Iterable[str] | None, raw: Path, limits: ArchiveConfig
) -> None:
    """A folder or archive the user already has."""
    if not (path.is_dir() or archive_kind(path)):
        raise RvosError(f"{path}: {key} must be a folder or a .zip/.tar archive")
    try:
        if path.is_dir():
            _copy_into_raw(find_dataset_root(path, check), keep, raw)
        else:
            _install_archive(path, check, keep, raw, limits)
    except LayoutNotFoundError as err:
        raise RvosError(f"{err} (params: {key})") from None


def _user_path(value: str, key: str, root: Path) -> Path:
    if not value.strip():
        raise RvosError(f"params: {key} is empty; set it to your dataset folder or archive")
    path = Path(value.strip()).expanduser()
    if not path.is_absolute():
        path = root / path
    if not path.exists():
        raise RvosError(f"{path}: not found (params: {key})")
    return path


# -------------------------------------------------------------------------- installing data/raw


def _install_archive(
    archive: Path, check: Check, keep: Iterable[str] | None, raw: Path, limits: ArchiveConfig
) -> None:
    """Extract next to `raw` (same file system, so moving is a rename), check, then swap in."""
    raw.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{raw.name}.extract-", dir=raw.parent))
    try:
        extracted = scratch / "archive"
        safe_extract(archive, extracted, limits)
        try:
            root = find_dataset_root(extracted, check)
        except RvosError as err:
            # The temporary folder is about to vanish: name the place inside the archive instead.
            raise type(err)(_relabel(str(err), extracted, archive)) from None
        with atomic_dir(raw) as out:
            for child in _selected(root, keep):
                os.replace(child, out / child.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _relabel(message: str, extracted: Path, archive: Path) -> str:
    return message.replace(f"{extracted}/", f"{archive}:").replace(str(extracted), f"{archive}:")


def _selected(root: Path, keep: Iterable[str] | None) -> list[Path]:
    if keep is None:
        return sorted(root.iterdir())
    return [root / name for name in keep]


def _copy_into_raw(root: Path, keep: Iterable[str] | None, raw: Path) -> None:
    files = []
    for top in _selected(root, keep):
        files.extend(_walk_files(top, root))
    with atomic_dir(raw) as out:
        for source in tqdm(files, desc=f"copy {root.name}", unit=" files"):
            target = out / source.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(source, target)  # contents only: data/raw does not depend on mtimes/modes
            except OSError as err:
                raise RvosError(f"{source}: cannot copy it into {raw} ({err.strerror or err})") from None


def _walk_files(top: Path, root: Path) -> list[Path]:
    """Files under `top`, following symlinks only when they stay inside the dataset folder `root`."""
    real_root = root.resolve()
    _check_link(top, real_root, root)
    if top.is_file():
        return [top]
    files = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            _check_link(here / name, real_root, here)
        files.extend(here / name for name in sorted(filenames))
        for name in filenames:
            if not (here / name).is_file():
                raise RvosError(f"{here / name}: not a regular file (device, fifo or socket)")
    return sorted(files)


def _check_link(path: Path, real_root: Path, here: Path) -> None:
    if not path.is_symlink():
        return
    target = path.resolve()
    if not target.is_relative_to(real_root):
        raise RvosError(
            f"{path}: symbolic link points outside the dataset folder (to {target}); copy the data in "
            "or point the params at the real folder"
        )
    if not target.exists():
        raise RvosError(f"{path}: symbolic link is broken (to {target})")
    if target.is_dir() and here.resolve().is_relative_to(target):
        raise RvosError(f"{path}: symbolic link loops back to {target}")


def remove_stale_temp_dirs(raw: Path) -> None:
    """Leftovers of a run killed with SIGKILL (DVC holds a repo lock, so no run is using them now)."""
    parent = raw.parent
    if not parent.is_dir():
        return
    for pattern in (f".{raw.name}.tmp-*", f".{raw.name}.extract-*"):
        for stale in parent.glob(pattern):
            log.info("removing leftover temporary folder %s", stale)
            shutil.rmtree(stale, ignore_errors=True)


# --------------------------------------------------------------------------------------- report


def raw_counts(source: str, raw: Path) -> dict[str, float]:
    """Videos per subset, files and megabytes of an installed raw-data folder."""
    if source == "youtubevos":
        counts = {
            f"raw_videos_{subset}": len(read_youtube_meta(raw / subset / "meta.json", subset == "train"))
            for subset in YOUTUBE_SUBSETS
        }
    else:
        counts = {f"raw_videos_{split}": len(names) for split, names in davis_sequence_lists(raw).items()}
    sizes = [p.stat().st_size for p in raw.rglob("*") if p.is_file()]
    counts["raw_files"] = len(sizes)
    counts["raw_megabytes"] = round(sum(sizes) / 1e6, 3)
    return counts
