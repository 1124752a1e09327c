"""Frames in and out one at a time: the inputs of `rvos demo` and the overlay video it writes.

Inputs are a video file or stream URL (anything OpenCV's FFmpeg backend reads; both take the same
path) or a folder of .jpg/.png frames. `open_input` probes an input (its first frame, frame count,
frame rate) without decoding the rest, so that the user's annotation can be checked against it before
any work; `FrameSource.frames` then reads the frames one by one. Nothing here holds more than one frame.

Never silently wrong:
- a folder's frames are ordered naturally (`frame_2` before `frame_10`: numbers as numbers); two names
  that differ only in how a number is written (`frame_1`, `frame_01`), or two files of the same frame
  (`00000.jpg`, `00000.png`), are refused, because no order or choice would be more than a guess;
- a video that ends before the frame count its container announces is an error, not a short output;
- a frame of another size than the first is an error naming it.
"""

import contextlib
import math
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rvos.data.layout import FRAME_SUFFIXES
from rvos.data.videos import decode_frame
from rvos.errors import RvosError

DEFAULT_FPS = 24.0  # DAVIS's frame rate, for folders of frames and videos that do not say


def natural_key(name: str) -> tuple:
    """'frame_12' -> ('frame_', 12, ''): text compared as text, digit runs as numbers."""
    parts = re.split(r"(\d+)", name)
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts))


def list_frames_naturally(folder: Path) -> list[Path]:
    """The .jpg/.jpeg/.png files of `folder` in natural order; ambiguous names are an RvosError."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES]
    if not files:
        raise RvosError(f"{folder}: no frames (.jpg/.jpeg/.png) in the folder")
    by_stem: dict[str, Path] = {}
    for path in sorted(files):
        if path.stem in by_stem:
            raise RvosError(
                f"{folder}: {by_stem[path.stem].name} and {path.name} are both frame {path.stem} "
                "(keep one of them)"
            )
        by_stem[path.stem] = path
    by_key: dict[tuple, Path] = {}
    for path in by_stem.values():
        key = natural_key(path.stem)
        if key in by_key:
            raise RvosError(
                f"{folder}: frames {by_key[key].name} and {path.name} have the same number, so their "
                "order is ambiguous (rename them, e.g. zero-padded)"
            )
        by_key[key] = path
    return [by_key[key] for key in sorted(by_key)]


@dataclass(frozen=True)
class FrameSource:
    """One input: a folder of frames (`files`) or a video file / stream URL (`files` is None)."""

    source: str
    size: tuple[int, int]  # (H, W) of the first frame
    fps: float | None  # what the video says; None for a folder or when it says nothing usable
    count: int | None  # frames announced (a folder: its files); None when unknown (a live stream)
    files: tuple[Path, ...] | None = None

    def frame_names(self) -> list[str] | None:
        """Output names of a folder's frames (their stems); None for a video (00000, 00001, ...)."""
        return None if self.files is None else [p.stem for p in self.files]

    def frames(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yield (output name, (H, W, 3) uint8 RGB frame), reading one frame at a time."""
        frames = self._folder_frames() if self.files is not None else self._video_frames()
        for name, frame in frames:
            if frame.shape[:2] != self.size:
                raise RvosError(
                    f"{self.source}: frame {name} is {frame.shape[0]}x{frame.shape[1]} but the first frame "
                    f"is {self.size[0]}x{self.size[1]}"
                )
            yield name, frame

    def _folder_frames(self) -> Iterator[tuple[str, np.ndarray]]:
        for path in self.files:
            yield path.stem, decode_frame(path, str(path))

    def _video_frames(self) -> Iterator[tuple[str, np.ndarray]]:
        capture = cv2.VideoCapture(self.source)
        read = 0
        try:
            while capture.isOpened():
                ok, bgr = capture.read()
                if not ok:
                    break
                yield f"{read:05d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                read += 1
        finally:
            capture.release()
        if read == 0:
            raise RvosError(f"{self.source}: cannot read any frame from this video (unsupported or corrupt file)")
        if self.count is not None and read < self.count:
            raise RvosError(
                f"{self.source}: the video ended after {read} of the {self.count} frames its container "
                "announces (truncated or damaged file; re-encode it, or extract its frames to a folder)"
            )


def is_url(source: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source) is not None


def open_input(source: str) -> FrameSource:
    """Probe an input: size, frame rate, frame count, decoding at most its first frame."""
    path = Path(source)
    if path.is_dir():
        files = tuple(list_frames_naturally(path))
        first = decode_frame(files[0], str(files[0]))
        return FrameSource(source, first.shape[:2], None, len(files), files)
    if not (is_url(source) or path.is_file()):
        raise RvosError(f"{source}: no such video file or folder")
    capture = cv2.VideoCapture(source)
    try:
        ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            raise RvosError(f"{source}: cannot read any frame from this video (unsupported or corrupt file)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    fps = fps if math.isfinite(fps) and 0 < fps < 1000 else None
    return FrameSource(source, first.shape[:2], fps, count if count > 0 else None)


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what native code (FFmpeg probing for an encoder) prints on file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Mp4Writer:
    """An MP4 written frame by frame: H.264 ('avc1') where this OpenCV can encode it, else MPEG-4 Part 2
    ('mp4v', which every OpenCV build with FFmpeg writes and reads).

    Both codecs store 4:2:0 colour, which needs an even width and height: OpenCV would silently crop
    an odd-sized input by one pixel, so an odd side is padded instead with one black row or column.
    """

    CODECS = ("avc1", "mp4v")

    def __init__(self, path: Path, size: tuple[int, int], fps: float) -> None:
        height, width = size
        self.path, self.size = path, size
        self.padded = (height + height % 2, width + width % 2)
        self.frames = 0
        for codec in self.CODECS:
            with _quiet_native_stderr():  # FFmpeg lists every H.264 encoder it tries and fails to open
                writer = cv2.VideoWriter(
                    str(path), cv2.VideoWriter_fourcc(*codec), fps, (self.padded[1], self.padded[0])
                )
            if writer.isOpened():
                self.codec, self._writer = codec, writer
                return
            writer.release()
        raise RvosError(f"{path}: this OpenCV build cannot write MP4 video (neither H.264 nor MPEG-4 Part 2)")

    def write(self, rgb: np.ndarray) -> None:
        """(H, W, 3) uint8 RGB at the input's size."""
        pad = ((0, self.padded[0] - self.size[0]), (0, self.padded[1] - self.size[1]), (0, 0))
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        self._writer.write(np.pad(bgr, pad) if any(p[1] for p in pad) else bgr)
        self.frames += 1

    def close(self) -> None:
        self._writer.release()
