"""The annotation a user gives `rvos demo --mask`: one PNG, or a folder of PNGs, checked in full before
any frame after the first is decoded (a bad mask must not cost a whole video's decoding first).

- One PNG annotates the input's first frame.
- A folder holds PNGs named after the frames they annotate (`00000.png`, `00020.png`, ...: the DAVIS
  and YouTube-VOS layout; for a folder of frames, the frames' own names). Each object is tracked from
  the first PNG that shows it; later PNGs may repeat it (a full DAVIS annotation does), which changes
  nothing. Only the PNGs that introduce an object are read again while the video streams.
- Each PNG holds object ids (palette or grayscale, 0 = background, 255 = void) or is a binary mask
  (only 0 and 255: one object, id 1).

Refused, each with one line naming the PNG: a colour (RGB) image, a mask of another size than the
frames, ids above the model's slots, a grey-level mask that looks like an anti-aliased or JPEG-saved
binary mask (many levels between 0 and 255, which are not object ids), a PNG named after no frame of
the input, a folder without PNGs, and an annotation without any object.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rvos.data.streams import FrameSource
from rvos.data.videos import object_ids
from rvos.errors import RvosError
from rvos.masks import VOID_ID, read_mask

SOFT_LEVELS = 8  # this many grey levels strictly between 0 and 255: an anti-aliased / JPEG binary mask


def normalise(mask: np.ndarray) -> np.ndarray:
    """A binary 0/255 mask becomes object 1; an id mask is returned as it is."""
    values = set(np.unique(mask).tolist())
    if VOID_ID in values and values <= {0, VOID_ID}:
        return (mask == VOID_ID).astype(np.uint8)
    return mask


def check_mask(mask: np.ndarray, path: Path, size: tuple[int, int], slots: int) -> list[int]:
    """-> the object ids of a read and normalised mask; an RvosError naming `path` if it is unusable."""
    if mask.shape != tuple(size):
        raise RvosError(
            f"{path}: mask is {mask.shape[0]}x{mask.shape[1]} but the frames are {size[0]}x{size[1]}"
        )
    ids = object_ids(mask)
    if ids and ids[-1] > slots:
        if len(ids) >= SOFT_LEVELS:
            raise RvosError(
                f"{path}: {len(ids)} grey levels between 0 and 255: this looks like a binary mask with "
                f"anti-aliased edges or saved as JPEG, not object ids; save it as a PNG with only 0 and "
                f"255 (one object) or with ids 1..{slots}"
            )
        raise RvosError(f"{path}: object id {ids[-1]} is above the model's {slots} slots (model.max_objects)")
    return ids


@dataclass(frozen=True)
class Annotation:
    """Where the objects of one input start: frame index -> the PNG that introduces them."""

    starts: dict[int, Path]
    ids: tuple[int, ...]  # every object id, ascending

    def at(self, index: int) -> np.ndarray | None:
        """The (H, W) uint8 annotation to give the segmenter on frame `index`, if any."""
        path = self.starts.get(index)
        return None if path is None else normalise(read_mask(path))

    def check_reached(self, frames_read: int, source: str) -> None:
        """After the video: an annotation of a frame beyond its end was never used (a live stream or a
        video that announced no frame count could not be checked before)."""
        late = [index for index in self.starts if index >= frames_read]
        if late:
            raise RvosError(
                f"{self.starts[min(late)]}: annotates frame {min(late)} but {source} ended after "
                f"{frames_read} frames"
            )


def frame_index_of(path: Path, source: FrameSource, positions: dict[str, int] | None) -> int:
    """The frame a PNG of a mask folder annotates, from its name (`positions`: a folder's frame names)."""
    if positions is not None:
        if path.stem not in positions:
            first = next(iter(positions))
            raise RvosError(
                f"{path}: no frame named {path.stem} in {source.source} (the PNGs of a mask folder are named "
                f"after the frames they annotate: {first}.png, ...)"
            )
        return positions[path.stem]
    if not path.stem.isdigit():
        raise RvosError(f"{path}: not a frame number (the frames of a video are 00000, 00001, ...)")
    index = int(path.stem)
    if source.count is not None and index >= source.count:
        raise RvosError(f"{path}: annotates frame {index} but {source.source} has {source.count} frames")
    return index


def load_annotation(mask: Path, source: FrameSource, slots: int) -> Annotation:
    """Check `mask` (a PNG or a folder of PNGs) against an input before any of its frames is segmented."""
    if mask.is_dir():
        pngs = sorted(p for p in mask.iterdir() if p.is_file() and p.suffix.lower() == ".png")
        if not pngs:
            others = sorted(p.name for p in mask.iterdir() if p.is_file())
            hint = f" (found {others[0]}: masks must be PNG, JPEG changes the ids)" if others else ""
            raise RvosError(f"{mask}: no annotation PNG in the mask folder{hint}")
        names = source.frame_names()
        positions = None if names is None else {name: i for i, name in enumerate(names)}
        indexed = sorted((frame_index_of(p, source, positions), p) for p in pngs)
    elif mask.is_file():
        indexed = [(0, mask)]
    else:
        raise RvosError(f"{mask}: no such mask file or folder")
    starts: dict[int, Path] = {}
    seen: set[int] = set()
    for index, path in indexed:
        ids = check_mask(normalise(read_mask(path)), path, source.size, slots)
        if set(ids) - seen:
            starts[index] = path
            seen.update(ids)
    if not seen:
        raise RvosError(f"{mask}: the annotation has no object")
    return Annotation(starts, tuple(sorted(seen)))
