"""Reading training clips: `clip_len` consecutive frames of a video with their id masks.

Two interchangeable video stores with the same interface:
- `LmdbVideos` reads the pre-resized frames of the `index` stage (the fast path),
- `RawVideos` decodes `data/raw` and resizes on the fly (what the original did; kept for comparison
  in `rvos bench loader`).
`ClipDataset` cuts videos into clips, augments them (one flip + affine per clip, shared by all its
frames), and returns uint8 tensors; the training loop turns them into floats and per-slot targets.
"""

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import lmdb
import numpy as np
import torch
from torch.utils.data import Dataset

from rvos.config import AugmentConfig
from rvos.data.lmdb_index import META_KEY
from rvos.data.videos import decode_frame, find_video, object_ids, resize_frame, resize_mask
from rvos.errors import RvosError
from rvos.masks import VOID_ID, decode_mask


@dataclass(frozen=True)
class VideoInfo:
    name: str
    frames: tuple[str, ...]  # frame stems in order
    size: tuple[int, int]  # original (H, W)
    objects: tuple[tuple[int, ...], ...]  # object ids present in each frame

    @property
    def all_objects(self) -> list[int]:
        return sorted({i for ids in self.objects for i in ids})

    @property
    def first_frames(self) -> list[int]:
        """Frames on which some object appears for the first time (DAVIS: frame 0 only), in order."""
        first_frame_of: dict[int, int] = {}
        for t, ids in enumerate(self.objects):
            for obj in ids:
                first_frame_of.setdefault(obj, t)
        return sorted(set(first_frame_of.values()))


class LmdbVideos:
    """Frames and masks from the LMDB index; opened lazily so that each DataLoader worker has its own."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "data.mdb").is_file():
            raise RvosError(f"{self.path}: no LMDB index here (run the index stage: dvc repro index)")
        self._env, self._pid = None, None
        with self._txn() as txn:
            meta = json.loads(txn.get(META_KEY))
            self.height, self.width = meta["height"], meta["width"]
            self.videos = {}
            for name in meta["videos"]:
                info = json.loads(txn.get(f"{name}/info".encode()))
                self.videos[name] = VideoInfo(
                    name, tuple(info["frames"]), tuple(info["size"]), tuple(tuple(x) for x in info["objects"])
                )

    def _txn(self) -> lmdb.Transaction:
        if self._env is None or self._pid != os.getpid():
            # readonly + lock=False: readers must not create lock.mdb inside the DVC output (P11)
            self._env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False, subdir=True)
            self._pid = os.getpid()
        return self._env.begin(buffers=False)

    def _get(self, key: str) -> bytes:
        with self._txn() as txn:
            value = txn.get(key.encode())
        if value is None:
            raise RvosError(f"{self.path}: key {key} is missing from the index")
        return value

    def frame(self, name: str, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB at the index resolution."""
        key = f"{name}/frame/{self.videos[name].frames[index]}"
        return decode_frame(self._get(key), f"{self.path}:{key}")

    def mask(self, name: str, index: int) -> np.ndarray:
        """(H, W) uint8 object ids at the index resolution."""
        key = f"{name}/mask/{self.videos[name].frames[index]}"
        return decode_mask(self._get(key), f"{self.path}:{key}")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_env"] = None  # an LMDB environment cannot cross a process boundary
        return state


class RawVideos:
    """Same interface as `LmdbVideos`, decoding `data/raw` and resizing each time (the slow path)."""

    def __init__(self, raw: Path, layout: str, names: list[str], height: int, width: int) -> None:
        self.height, self.width = height, width
        self.files = {name: find_video(raw, layout, name) for name in names}
        self.videos = {}
        for name, files in self.files.items():
            first = decode_mask(files.masks[0], str(files.masks[0]))
            objects = tuple(tuple(object_ids(decode_mask(m, str(m)))) for m in files.masks)
            stems = tuple(p.stem for p in files.frames)
            self.videos[name] = VideoInfo(name, stems, (int(first.shape[0]), int(first.shape[1])), objects)

    def frame(self, name: str, index: int) -> np.ndarray:
        path = self.files[name].frames[index]
        return resize_frame(decode_frame(path, str(path)), self.height, self.width)

    def mask(self, name: str, index: int) -> np.ndarray:
        path = self.files[name].masks[index]
        return resize_mask(decode_mask(path, str(path)), self.height, self.width)


def clip_starts(num_frames: int, clip_len: int, spread: bool = False) -> list[int]:
    """The original's epoch: non-overlapping clips from frame 0, the tail that does not fill one dropped.

    `spread` (for long training windows, where the dropped tail could be most of a video): about
    num_frames / clip_len clips, spread evenly from the first frame to the last, so that an epoch
    still reads about every frame once (neighbours may overlap or leave a few frames out).
    """
    if not spread:
        return list(range(0, num_frames - clip_len + 1, clip_len))
    if num_frames < clip_len:
        return []
    count = max(1, round(num_frames / clip_len))
    if count == 1:
        return [(num_frames - clip_len) // 2]
    return [round(i * (num_frames - clip_len) / (count - 1)) for i in range(count)]


def random_affine(rng: np.random.Generator, augment: AugmentConfig, height: int, width: int) -> np.ndarray:
    """A 2x3 matrix: flip, rotation, shear, independent x/y zoom and translation about the centre."""
    angle = math.radians(rng.uniform(-augment.rotation_deg, augment.rotation_deg))
    shear = math.radians(rng.uniform(-augment.shear_deg, augment.shear_deg))
    zoom_x, zoom_y = rng.uniform(augment.zoom_min, augment.zoom_max, size=2)
    shift_x = rng.uniform(-augment.translation, augment.translation) * width
    shift_y = rng.uniform(-augment.translation, augment.translation) * height
    flip = -1.0 if augment.flip and rng.random() < 0.5 else 1.0
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    shearing = np.array([[1.0, math.tan(shear)], [0.0, 1.0]])
    scaling = np.diag([zoom_x * flip, zoom_y])
    linear = rotation @ shearing @ scaling
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    offset = centre - linear @ centre + np.array([shift_x, shift_y])
    return np.hstack([linear, offset[:, None]])


class ClipDataset(Dataset):
    """Clips of `clip_len` frames. Item i -> dict(images (T,3,H,W) uint8, masks (T,H,W) uint8, ...).

    `clips_per_video = 0` gives the original's non-overlapping clips; N > 0 gives N clips per video at
    random starts, re-drawn each epoch (`set_epoch`). With `reference` each item also holds the video's
    first annotated frame and its mask (`reference_image` (3,H,W), `reference_mask` (H,W)), warped like
    the clip: where inference takes the objects' looks from (`train.reference_frame: video`).
    Randomness comes from (seed, epoch, item), never from global state, so results do not depend on
    the number of DataLoader workers.
    """

    def __init__(
        self,
        videos: LmdbVideos | RawVideos,
        names: list[str],
        clip_len: int,
        augment: AugmentConfig | None = None,
        clips_per_video: int = 0,
        seed: int = 0,
        spread: bool = False,
        reference: bool = False,
    ) -> None:
        self.videos, self.clip_len, self.augment, self.spread = videos, clip_len, augment, spread
        self.reference = reference
        self.clips_per_video, self.seed, self.epoch = clips_per_video, seed, 0
        missing = [n for n in names if n not in videos.videos]
        if missing:
            raise RvosError(f"video {missing[0]} is not in the index (re-run the index stage)")
        self.names = [n for n in sorted(names) if len(videos.videos[n].frames) >= clip_len]
        if not self.names:
            raise RvosError(f"no video has clip_len = {clip_len} frames or more")
        self.clips = self._make_clips()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.clips = self._make_clips()

    def _make_clips(self) -> list[tuple[str, int]]:
        clips = []
        rng = np.random.default_rng([self.seed, self.epoch, 0])
        for name in self.names:
            num_frames = len(self.videos.videos[name].frames)
            if self.clips_per_video == 0:
                starts = clip_starts(num_frames, self.clip_len, self.spread)
            else:
                starts = rng.integers(0, num_frames - self.clip_len + 1, size=self.clips_per_video).tolist()
            clips.extend((name, int(s)) for s in starts)
        return clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, item: int) -> dict:
        name, start = self.clips[item]
        frames = [self.videos.frame(name, start + t) for t in range(self.clip_len)]
        masks = [self.videos.mask(name, start + t) for t in range(self.clip_len)]
        if self.reference:  # appended last, so that it gets the clip's augmentation
            first = (self.videos.videos[name].first_frames or [0])[0]
            frames.append(self.videos.frame(name, first))
            masks.append(self.videos.mask(name, first))
        if self.augment is not None and self.augment.enabled:
            rng = np.random.default_rng([self.seed, self.epoch, item + 1])
            matrix = random_affine(rng, self.augment, self.videos.height, self.videos.width)
            size = (self.videos.width, self.videos.height)
            frames = [
                cv2.warpAffine(f, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                for f in frames
            ]
            masks = [
                cv2.warpAffine(m, matrix, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
                for m in masks
            ]
        masks = [np.where(m == VOID_ID, 0, m) for m in masks]  # void counts as background in training
        images = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()  # (T[+1], 3, H, W)
        ids = torch.from_numpy(np.stack(masks))  # (T[+1], H, W) object ids
        item = {
            "images": images[: self.clip_len],
            "masks": ids[: self.clip_len],
            "objects": torch.tensor(_id_flags(self.videos.videos[name].all_objects)),  # (256,) bool
            "video": name,
            "start": start,
        }
        if self.reference:
            item["reference_image"], item["reference_mask"] = images[-1], ids[-1]
        return item


def _id_flags(ids: list[int]) -> list[bool]:
    flags = [False] * 256
    for i in ids:
        flags[i] = True
    return flags
