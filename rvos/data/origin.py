"""Naming the user's own file when a later stage finds a problem in its copy under `data/raw`.

With `data.source: local` the download stage copies (or extracts) the user's DAVIS folder into
`data/raw`; the index stage then decodes every frame and mask of the copy. A message about
`data/raw/JPEGImages/480p/cat/00004.jpg` sends the user to a file they never made, so the stage
rewrites it to the file in their folder, or `<archive>:<member>` for an archive. Only run when an
error is reported, so listing a large archive costs nothing on the normal path.
"""

from pathlib import Path

from rvos.data.archive import archive_kind, member_names
from rvos.data.layout import check_davis_layout, find_dataset_root
from rvos.errors import RvosError

_LIST = "ImageSets/2017/train.txt"  # every DAVIS layout has it, at the root of the dataset


def local_dataset_prefix(value: str, root: Path) -> str | None:
    """What `data/raw` stands for in the user's terms: the dataset folder inside `data.local.path`
    (relative paths are under the project `root`), or `<archive>:<folder inside it>/`; None when the
    user's data is no longer there (the copy is then the only file that can be named)."""
    path = Path(value.strip()).expanduser()
    path = path if path.is_absolute() else root / path
    try:
        if path.is_dir():
            return f"{find_dataset_root(path, check_davis_layout)}/"
        if path.is_file() and archive_kind(path):
            lists = [n for n in member_names(path) if n == _LIST or n.endswith(f"/{_LIST}")]
            if lists:
                return f"{path}:{min(lists, key=len)[: -len(_LIST)]}"
    except RvosError:
        pass
    return None


def name_user_files(message: str, raw: Path, prefix: str | None) -> str:
    """`message` with every path under `raw` rewritten under `prefix` (see local_dataset_prefix)."""
    return message if prefix is None else message.replace(f"{raw}/", prefix)
