"""`rvos restore`: bring back the outputs that dvc.lock records, after a stage failed.

Before a stage's command runs, `dvc repro` (and a workspace `dvc exp run`) deletes the stage's
outputs, so a run that fails half-way leaves neither the old results nor new ones. dvc.lock is only
rewritten for stages that succeed, so it still names the last good outputs, and their contents are
in the DVC cache: `dvc checkout` brings back the cached outputs, but it skips the `cache: false`
ones (the metrics, plots and reports kept in git). DVC's run-cache keeps a copy of a stage's
`metrics:` / `plots:` files (not of plain `cache: false` outs, nor of folders), by the hash dvc.lock
records, so those are copied back from it here (plain git-tracked files, never links into the
cache), each written atomically. Every other `cache: false` output comes back from git's HEAD when
committed, which is why a good run's reports/ should be committed.
"""

import logging
import shutil
import subprocess
from pathlib import Path

from rvos.atomic import atomic_dir, atomic_file
from rvos.errors import RvosError

log = logging.getLogger(__name__)


def restore_outputs(root: Path) -> list[str]:
    """Check out every output recorded in `root`/dvc.lock; -> the outputs it (re)wrote."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        repo = Repo(str(root))
    except DvcException as err:
        raise RvosError(f"{root}: not a DVC repository ({err})") from None
    with repo:
        try:
            stats = repo.checkout(force=True)
        except DvcException as err:
            raise RvosError(f"dvc checkout failed: {err}") from None
        written = [*stats["added"], *stats["modified"]]
        with repo.lock:
            written += _uncached(repo)
    return sorted(written)


def _uncached(repo) -> list[str]:  # noqa: ANN001 - a dvc.repo.Repo
    """Copy each changed `cache: false` output back from the cache, by the hash dvc.lock records."""
    from dvc_data.hashfile.tree import Tree

    cache = repo.cache.local
    written, missing = [], []
    for stage in repo.index.stages:
        for out in stage.outs:
            if out.use_cache or not out.hash_info or not out.changed():
                continue  # cached (dvc checkout did it), never run, or already what dvc.lock records
            obj = None
            if cache.exists(out.hash_info.value):
                obj = Tree.load(cache, out.hash_info) if out.hash_info.isdir else out.hash_info
            if obj is None:
                # no run-cache copy (a plain `cache: false` out or a folder): the committed one, if any
                (written if _from_git(repo.root_dir, out.def_path) else missing).append(out.def_path)
                if out.def_path in written and out.changed():
                    log.warning("%s: git's HEAD copy differs from what dvc.lock records", out.def_path)
                continue
            target = Path(out.fs_path)
            if isinstance(obj, Tree):
                # a folder: every file of its manifest, written to a temporary folder renamed into place
                with atomic_dir(target) as tmp:
                    for key, _, file_hash in obj:
                        dest = tmp.joinpath(*key)
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(cache.oid_to_path(file_hash.value), dest)
            else:
                with atomic_file(target) as handle, open(cache.oid_to_path(obj.value), "rb") as source:
                    shutil.copyfileobj(source, handle)
            written.append(out.def_path)
    if missing:
        raise RvosError(
            f"{', '.join(missing)}: neither in the DVC cache nor committed to git, cannot be restored "
            "(re-run its stage)"
        )
    return written


def _from_git(root: str, path: str) -> bool:
    """`git checkout HEAD -- path` if HEAD has it; -> whether it did."""

    def git(*args: str) -> bool:
        return subprocess.run(["git", *args], cwd=root, capture_output=True).returncode == 0

    return git("cat-file", "-e", f"HEAD:{path}") and git("checkout", "HEAD", "--", path)
