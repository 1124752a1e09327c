"""Pictures of a test run: which videos to show, and frame | prediction | ground truth side by side.

The `metrics` stage writes one strip per video for the worst and the best test videos by J&F
(`reports/gallery/`, DVC image plots) and the report animates the same videos; both layouts: DAVIS
(480p frames, every frame annotated) and YouTube-VOS (`train/`, annotated every 5th frame). The
overlays are the ones `rvos demo` draws (`rvos.masks.overlay`: palette colours with outlines).
Everything here is deterministic: the same frames and masks give the same pixels, and OpenCV's PNG
encoder the same bytes.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rvos.data.videos import video_dirs
from rvos.errors import RvosError
from rvos.masks import VOID_ID, overlay, read_mask

TILE_WIDTH = 320  # each picture of a strip is scaled to this width (a 480p DAVIS frame is 854 wide)
HEADER = 28  # pixels of title band above a strip
COLUMNS = ("frame", "prediction", "ground truth")


@dataclass(frozen=True)
class Pick:
    name: str  # the picture's fixed name (worst-1, best-2, ...): the same file across experiments
    sequence: str
    score: float  # the sequence's J&F

    @property
    def title(self) -> str:
        return f"{self.name}: {self.sequence}  J&F {self.score:.3f}"


def pick_sequences(rows: list[dict], count: int = 2) -> list[Pick]:
    """The `count` worst and `count` best sequences of the per-sequence rows, worst first.

    Fewer when there are fewer than 2 * count sequences (never the same video twice, except a
    single test video, which is both the worst and the best). Ties go by name, so the pick is stable.
    """
    ranked = sorted(rows, key=lambda r: (r["J&F"], r["sequence"]))
    each = min(count, max(1, len(ranked) // 2))
    worst = [Pick(f"worst-{i + 1}", r["sequence"], r["J&F"]) for i, r in enumerate(ranked[:each])]
    best = [Pick(f"best-{i + 1}", r["sequence"], r["J&F"]) for i, r in enumerate(ranked[::-1][:each])]
    return worst + best


@dataclass(frozen=True)
class VideoFiles:
    """Where one video's pictures are: frames (JPEG), predicted and ground-truth id masks (PNG)."""

    frames: Path
    predictions: Path
    annotations: Path
    annotated_only: bool = False  # show only frames with a ground truth (sparse YouTube-VOS annotations)

    @classmethod
    def davis(cls, root: Path, predictions: Path, video: str) -> "VideoFiles":
        """A video of a DAVIS-layout folder `root` (480p frames and annotations) and its predictions."""
        return cls(
            root / "JPEGImages" / "480p" / video, predictions / video, root / "Annotations" / "480p" / video
        )

    @classmethod
    def of(cls, layout: str, root: Path, predictions: Path, video: str) -> "VideoFiles":
        """A test video of `root` (data/raw) in the 'davis' or 'youtube' layout (rvos.data.layout).

        YouTube-VOS test videos are the train-val part of `train/`, annotated every 5th frame: a strip
        of frames without ground truth would show nothing to compare, so only annotated ones are shown.
        """
        if layout != "youtube":
            return cls.davis(root, predictions, video)
        frames, annotations = video_dirs(root, layout, video)
        return cls(frames, predictions / video, annotations, annotated_only=True)

    def names(self) -> list[str]:
        """The frame names (stems) that have a prediction (and a ground truth if `annotated_only`)."""
        names = sorted(p.stem for p in self.predictions.glob("*.png"))
        if self.annotated_only:
            names = [name for name in names if (self.annotations / f"{name}.png").is_file()]
        if not names:
            what = "no predicted masks" + (" on an annotated frame" if self.annotated_only else "")
            raise RvosError(f"{self.predictions}: {what}")
        return names

    def triple(self, name: str, width: int = TILE_WIDTH) -> list[np.ndarray]:
        """[frame, prediction overlay, ground-truth overlay] of one frame, RGB, scaled to `width`."""
        image = cv2.imread(str(self.frames / f"{name}.jpg"))
        if image is None:
            raise RvosError(f"{self.frames / f'{name}.jpg'}: missing or not an image")
        frame = image[..., ::-1]
        tiles = [frame, overlay(frame, self._mask(self.predictions / f"{name}.png", frame))]
        truth = self.annotations / f"{name}.png"
        if truth.is_file():
            tiles.append(overlay(frame, self._mask(truth, frame)))
        else:  # zero-shot test sets may annotate only some frames: show the bare frame
            tiles.append(frame)
        height = round(frame.shape[0] * width / frame.shape[1])
        size = (width, height)
        return [cv2.resize(np.ascontiguousarray(t), size, interpolation=cv2.INTER_AREA) for t in tiles]

    @staticmethod
    def _mask(path: Path, frame: np.ndarray) -> np.ndarray:
        ids = read_mask(path)
        if ids.shape != frame.shape[:2]:
            mask_size, frame_size = f"{ids.shape[1]}x{ids.shape[0]}", f"{frame.shape[1]}x{frame.shape[0]}"
            raise RvosError(f"{path}: mask is {mask_size}, its frame {frame_size}")
        return np.where(ids == VOID_ID, 0, ids).astype(np.uint8)  # "don't care" pixels are not an object


def spread(names: list[str], count: int) -> list[str]:
    """`count` frames evenly spread after the first one (the one-shot model is given the first)."""
    if len(names) <= count:
        return names
    picks = np.linspace(0, len(names) - 1, count + 1)[1:].round().astype(int)
    return [names[i] for i in picks]


def title_band(text: str, width: int, height: int = HEADER) -> np.ndarray:
    band = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(band, text, (6, height - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return band


def strip(video: VideoFiles, title: str, frames: int = 3) -> np.ndarray:
    """One picture, RGB: a title band, then one row per frame: frame | prediction | ground truth."""
    gap = 2  # white pixels right of and below each picture, so that the columns stay apart
    rows = [
        np.hstack(
            [
                cv2.copyMakeBorder(t, 0, gap, 0, gap, cv2.BORDER_CONSTANT, value=(255, 255, 255))
                for t in triple
            ]
        )
        for triple in (video.triple(name) for name in spread(video.names(), frames))
    ]
    width = rows[0].shape[1]
    header = title_band(f"{title}   columns: {' | '.join(COLUMNS)}", width)
    return np.vstack([header, *rows])


def write_png(path: Path, picture: np.ndarray) -> None:
    """RGB picture -> PNG file (OpenCV's encoder: same pixels, same bytes)."""
    if not cv2.imwrite(str(path), np.ascontiguousarray(picture[..., ::-1])):
        raise RvosError(f"{path}: cannot write the picture")


def animation_frames(video: VideoFiles, limit: int = 40, width: int = 240) -> Iterator[np.ndarray]:
    """Prediction overlay | ground-truth overlay of the first `limit` frames, RGB, for an animation."""
    for name in video.names()[:limit]:
        _, predicted, truth = video.triple(name, width)
        yield np.hstack([predicted, truth])
