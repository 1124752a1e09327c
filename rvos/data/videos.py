"""Finding, decoding and resizing the frames and masks of one video, with strict checks.

Every problem with a user's files is an `RvosError` naming the file: missing or corrupt frames,
masks that are colour images, frame/mask size mismatches, a video without a first-frame annotation,
and object ids that the first frame does not define.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rvos.data.layout import FRAME_SUFFIXES
from rvos.errors import RvosError
from rvos.masks import VOID_ID, decode_mask


@dataclass(frozen=True)
class VideoFiles:
    name: str
    frames: tuple[Path, ...]  # in temporal order
    masks: tuple[Path, ...]  # one annotation per frame, same stems


def video_dirs(raw: Path, layout: str, name: str) -> tuple[Path, Path]:
    """(frame folder, annotation folder) of a video in the DAVIS-2017 or YouTube-VOS layout."""
    if layout == "youtube":
        return raw / "train" / "JPEGImages" / name, raw / "train" / "Annotations" / name
    return raw / "JPEGImages" / "480p" / name, raw / "Annotations" / "480p" / name


def list_frames(folder: Path) -> list[Path]:
    """Image files of a folder in name order (DAVIS/YouTube names are zero-padded frame numbers)."""
    if not folder.is_dir():
        raise RvosError(f"{folder}: frame folder is missing")
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not frames:
        raise RvosError(f"{folder}: no frames (.jpg/.png) in the folder")
    return frames


def find_video(raw: Path, layout: str, name: str) -> VideoFiles:
    """Pair each frame with its annotation; every frame must be annotated (train/val/test videos)."""
    frame_dir, mask_dir = video_dirs(raw, layout, name)
    frames = list_frames(frame_dir)
    if not mask_dir.is_dir():
        raise RvosError(f"{mask_dir}: annotation folder is missing")
    masks = {p.stem: p for p in mask_dir.glob("*.png")}
    first = frames[0]
    if first.stem not in masks:
        raise RvosError(f"{mask_dir / (first.stem + '.png')}: first-frame annotation is missing for video {name}")
    frame_stems = {p.stem for p in frames}
    for stem in sorted(set(masks) - frame_stems):
        raise RvosError(f"{frame_dir / (stem + '.jpg')}: frame is missing (its annotation {masks[stem]} exists)")
    missing = [p for p in frames if p.stem not in masks]
    if missing:
        raise RvosError(f"{mask_dir / (missing[0].stem + '.png')}: annotation is missing for frame {missing[0]}")
    return VideoFiles(name, tuple(frames), tuple(masks[p.stem] for p in frames))


def decode_frame(data: bytes | Path, name: str) -> np.ndarray:
    """JPEG/PNG bytes or path -> (H, W, 3) uint8 RGB; a corrupt file is an RvosError naming it."""
    if isinstance(data, Path):
        try:
            data = data.read_bytes()
        except OSError as err:
            raise RvosError(f"{name}: cannot read frame ({err.strerror})") from None
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        raise RvosError(f"{name}: frame is corrupt or not an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """RGB frame -> (height, width, 3); area interpolation, the least aliasing when shrinking."""
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Id map -> (height, width); nearest neighbour, so every pixel keeps a real object id."""
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)


def check_mask(mask: np.ndarray, mask_path: Path, frame_shape: tuple[int, ...], frame_path: Path) -> None:
    if mask.shape != frame_shape[:2]:
        raise RvosError(
            f"{mask_path}: mask is {mask.shape[0]}x{mask.shape[1]} but frame {frame_path.name} is "
            f"{frame_shape[0]}x{frame_shape[1]}"
        )


def object_ids(mask: np.ndarray) -> list[int]:
    """Object ids present in a mask (background 0 and void 255 excluded), ascending."""
    ids = np.unique(mask)
    return [int(i) for i in ids if i != 0 and i != VOID_ID]


def read_annotated_video(video: VideoFiles, layout: str):  # noqa: ANN201 - generator of frames
    """Yield (stem, rgb frame, id mask, ids) for every frame, checking everything on the way.

    In the DAVIS layout the first frame defines the objects: a later id it does not contain is an
    error (the DAVIS protocol would silently drop it). YouTube-VOS objects may appear later.
    """
    first_ids: set[int] | None = None
    size = None
    for frame_path, mask_path in zip(video.frames, video.masks):
        frame = decode_frame(frame_path, str(frame_path))
        if size is None:
            size = frame.shape
        elif frame.shape != size:
            raise RvosError(
                f"{frame_path}: frame is {frame.shape[0]}x{frame.shape[1]}, the video's first frame is "
                f"{size[0]}x{size[1]}"
            )
        mask = decode_mask(mask_path, str(mask_path))
        check_mask(mask, mask_path, frame.shape, frame_path)
        ids = object_ids(mask)
        if first_ids is None:
            first_ids = set(ids)
            if not ids and layout == "davis":
                raise RvosError(f"{mask_path}: first-frame annotation has no object")
        elif layout == "davis" and not set(ids) <= first_ids:
            unknown = sorted(set(ids) - first_ids)
            raise RvosError(
                f"{mask_path}: unknown object id {unknown[0]} (the first frame defines ids {sorted(first_ids)})"
            )
        yield frame_path.stem, frame, mask, ids
