"""Cheap structural checks of a dataset folder before it becomes `data/raw`.

Only folders, file names and the small index files (ImageSets lists, meta.json) are read here;
decoding every frame and mask is the index stage's job. The point is to refuse a wrong or incomplete
dataset at the first stage, with one line naming the path and the problem, instead of failing
hours later in training.

Layouts (spec section 4):
- DAVIS-2017: `JPEGImages/480p/<seq>/*.jpg`, `Annotations/480p/<seq>/*.png`,
  `ImageSets/2017/{train,val}.txt`.
- YouTube-VOS: `{train,valid}/{JPEGImages,Annotations}/<video>/...` and `{train,valid}/meta.json`
  (`{"videos": {vid: {"objects": {id: {"category": ..., "frames": [...]}}}}}`; the official valid
  meta.json has no categories).
"""

import json
from collections.abc import Callable
from pathlib import Path

from rvos.errors import RvosError

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
DAVIS_SPLITS = ("train", "val")
YOUTUBE_SUBSETS = ("train", "valid")
_JUNK_PREFIXES = (".", "__MACOSX")  # hidden files, macOS resource forks added by Finder's zip


class LayoutNotFoundError(RvosError):
    """The folder does not look like the dataset at all (as opposed to a broken copy of it)."""


def dataset_layout(source: str) -> str:
    """'youtube' for YouTube-VOS, 'davis' for every source stored in the DAVIS-2017 layout."""
    return "youtube" if source == "youtubevos" else "davis"


# ---------------------------------------------------------------------------------- video lists


def read_list(path: Path) -> list[str]:
    """A video list (one name per line, blank lines ignored), e.g. data/splits/train.txt."""
    try:
        names = [line.strip() for line in path.read_text().splitlines()]
    except OSError as err:
        raise RvosError(f"{path}: cannot read video list ({err.strerror})") from None
    return [name for name in names if name]


def write_list(path: Path, names: list[str]) -> None:
    path.write_text("".join(f"{name}\n" for name in names))


# ---------------------------------------------------------------------------------------- DAVIS


def check_davis_layout(root: Path) -> None:
    """Refuse `root` unless it has the DAVIS-2017 folders, both split lists and every listed sequence."""
    root = Path(root)
    if not (root / "JPEGImages").is_dir():
        raise LayoutNotFoundError(f"{root / 'JPEGImages'}: folder is missing (not a DAVIS-2017 layout)")
    frames_root = _require_dir(root / "JPEGImages" / "480p")
    masks_root = _require_dir(root / "Annotations" / "480p")
    for split, names in davis_sequence_lists(root).items():
        for name in names:
            _check_davis_sequence(frames_root, masks_root, name, split)


def davis_sequence_lists(root: Path) -> dict[str, list[str]]:
    """{'train': [...], 'val': [...]} from `ImageSets/2017/*.txt`; each list non-empty, names plain."""
    lists = {}
    for split in DAVIS_SPLITS:
        path = Path(root) / "ImageSets" / "2017" / f"{split}.txt"
        if not path.is_file():
            raise RvosError(f"{path}: sequence list is missing")
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise RvosError(f"{path}: cannot read sequence list ({err})") from None
        names = [line.strip() for line in lines if line.strip()]
        if not names:
            raise RvosError(f"{path}: lists no sequences")
        for name in names:
            if not _is_plain_name(name):
                raise RvosError(f"{path}: {name!r} is not a sequence folder name")
        lists[split] = names
    return lists


def _check_davis_sequence(frames_root: Path, masks_root: Path, name: str, split: str) -> None:
    frame_dir = frames_root / name
    mask_dir = masks_root / name
    if not frame_dir.is_dir():
        raise RvosError(f"{frame_dir}: frame folder of {split} sequence {name} is missing")
    if not mask_dir.is_dir():
        raise RvosError(f"{mask_dir}: annotation folder of {split} sequence {name} is missing")
    frames = sorted(p.name for p in frame_dir.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not frames:
        raise RvosError(f"{frame_dir}: sequence {name} has no frames (.jpg/.png)")
    # One-shot VOS starts from the first frame's mask: a sequence without it cannot be trained or scored.
    first_mask = mask_dir / (Path(frames[0]).stem + ".png")
    if not first_mask.is_file():
        raise RvosError(f"{first_mask}: first-frame annotation of sequence {name} is missing")
    _check_frame_numbers(frame_dir, [Path(f).stem for f in frames], mask_dir, name)


def _check_frame_numbers(frame_dir: Path, stems: list[str], mask_dir: Path, name: str) -> None:
    """DAVIS frames are numbered 00000, 00001, ...: a number missing from both the frames and the
    annotations would otherwise be read as a continuous video (the motion jumps, the metrics' decay
    is computed on a wrong timeline), and numbers of different widths sort out of temporal order.
    Names that are not all numbers are left alone (their name order is their order)."""
    numbered = set(stems) | {p.stem for p in mask_dir.glob("*.png")}
    if not all(stem.isascii() and stem.isdigit() for stem in numbered):  # '²'.isdigit(), but no int
        return
    widths = sorted({len(stem) for stem in numbered})
    if len(widths) > 1:
        short, long = (min(s for s in numbered if len(s) == width) for width in (widths[0], widths[-1]))
        raise RvosError(
            f"{frame_dir}: sequence {name} mixes frame numbers of {widths[0]} and {widths[-1]} digits "
            f"({short}, {long}), so name order is not time order: zero-pad every frame and mask to one width"
        )
    numbers = sorted(int(stem) for stem in numbered)
    present = set(numbers)
    for number in range(numbers[0], numbers[-1]):
        if number not in present:
            missing = f"{number:0{widths[0]}d}"
            raise RvosError(
                f"{frame_dir}: sequence {name} has no frame {missing} and no annotation {missing}.png "
                f"(frames {numbers[0]:0{widths[0]}d}..{numbers[-1]:0{widths[0]}d} must be consecutive, or "
                "the video would be read as continuous): renumber its frames and masks without the gap, "
                "or split it into two sequences"
            )


# ---------------------------------------------------------------------------------- YouTube-VOS


def check_youtube_layout(root: Path) -> None:
    """Refuse `root` unless `train/` and `valid/` each have frames, annotations and a valid meta.json."""
    root = Path(root)
    if not any((root / subset).is_dir() for subset in YOUTUBE_SUBSETS):
        raise LayoutNotFoundError(f"{root}: has no train/ or valid/ folder (not a YouTube-VOS layout)")
    for subset in YOUTUBE_SUBSETS:
        folder = _require_dir(root / subset)
        frames_root = _require_dir(folder / "JPEGImages")
        masks_root = _require_dir(folder / "Annotations")
        meta_path = folder / "meta.json"
        videos = read_youtube_meta(meta_path, need_category=subset == "train")
        for video in videos:
            for where in (frames_root / video, masks_root / video):
                if not where.is_dir():
                    raise RvosError(f"{where}: folder of video {video} (listed in {meta_path}) is missing")


def read_youtube_meta(path: Path, need_category: bool = True) -> dict[str, dict]:
    """The `videos` mapping of a YouTube-VOS meta.json, after checking its shape."""
    if not path.is_file():
        raise RvosError(f"{path}: meta.json is missing")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RvosError(f"{path}: cannot parse meta.json ({err})") from None
    videos = meta.get("videos") if isinstance(meta, dict) else None
    if not isinstance(videos, dict) or not videos:
        raise RvosError(f'{path}: expected {{"videos": {{<video>: ...}}}} with at least one video')
    for video, entry in videos.items():
        _check_youtube_video(path, video, entry, need_category)
    return videos


def _check_youtube_video(path: Path, video: str, entry: object, need_category: bool) -> None:
    if not _is_plain_name(video):
        raise RvosError(f"{path}: {video!r} is not a video folder name")
    objects = entry.get("objects") if isinstance(entry, dict) else None
    if not isinstance(objects, dict):
        raise RvosError(f'{path}: video {video} has no "objects" mapping')
    for obj_id, obj in objects.items():
        where = f"{path}: video {video} object {obj_id}"
        if not isinstance(obj, dict):
            raise RvosError(f"{where}: expected a mapping with 'frames'")
        frames = obj.get("frames")
        if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
            raise RvosError(f"{where}: 'frames' must be a list of frame names")
        if need_category and not isinstance(obj.get("category"), str):
            raise RvosError(f"{where}: 'category' is missing")


# ---------------------------------------------------------------------------------------- shared


def find_dataset_root(extracted: Path, check: Callable[[Path], None], max_depth: int = 4) -> Path:
    """The folder inside `extracted` that passes `check` (archives often wrap it, e.g. `DAVIS/`).

    Goes down while a folder holds exactly one sub-folder (ignoring files and macOS/hidden junk).
    A folder that looks like the dataset but is broken raises its own error at once; if no level looks
    like the dataset, the error of the top level is raised.
    """
    extracted = Path(extracted)
    folder = extracted
    first_error: LayoutNotFoundError | None = None
    for _ in range(max_depth + 1):
        try:
            check(folder)
            return folder
        except LayoutNotFoundError as err:
            first_error = first_error or err
        subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(_JUNK_PREFIXES)]
        if len(subfolders) != 1:
            break
        folder = subfolders[0]
    assert first_error is not None
    raise first_error


def _require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise RvosError(f"{path}: folder is missing")
    return path


def _is_plain_name(name: str) -> bool:
    """A single path component: a list must not make us look outside the dataset folder."""
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\x00" not in name
