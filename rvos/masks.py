"""Reading and writing object-id masks (DAVIS convention: pixel value = object id, 0 = background).

Masks are stored as 8-bit palette PNGs with the PASCAL-VOC colour map, like the official DAVIS tools.
Reading accepts palette ("P") and grayscale ("L") PNGs and refuses colour images, because the colour
of an RGB rendering is not an object id.
"""

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rvos.errors import RvosError

VOID_ID = 255  # DAVIS marks "don't care" pixels with 255


def voc_palette(num_colors: int = 256) -> list[int]:
    """The PASCAL-VOC bit-interleaved colour map used by DAVIS, as a flat [r, g, b, ...] list."""
    palette = []
    for index in range(num_colors):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette.extend((r, g, b))
    return palette


_PALETTE = voc_palette()


def decode_mask(data: bytes | Path, name: str) -> np.ndarray:
    """Decode a PNG (bytes or path) into an (H, W) uint8 id map; `name` is used in error messages."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            image.load()
            mode = image.mode
            if mode not in ("P", "L"):
                raise RvosError(
                    f"{name}: mask is {mode}, expected an indexed (palette) or grayscale PNG of object ids"
                )
            return np.array(image, dtype=np.uint8)
    except RvosError:
        raise
    except FileNotFoundError:
        raise RvosError(f"{name}: mask file is missing") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise RvosError(f"{name}: cannot decode mask ({err})") from None


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask file into an (H, W) uint8 id map."""
    return decode_mask(Path(path), str(path))


def encode_mask(ids: np.ndarray) -> bytes:
    """Encode an (H, W) id map as a palette PNG (deterministic bytes for equal input)."""
    if ids.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {ids.shape}")
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(_PALETTE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def write_mask(path: str | Path, ids: np.ndarray) -> None:
    """Write an (H, W) id map as a palette PNG."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(encode_mask(ids))


_COLOURS = np.array(_PALETTE, dtype=np.uint8).reshape(256, 3)


def overlay(frame: np.ndarray, ids: np.ndarray, alpha: float = 0.5, outline: bool = True) -> np.ndarray:
    """(H, W, 3) RGB frame with each object's palette colour blended over its pixels and, with
    `outline`, its contours drawn in that colour (so that touching objects stay apart)."""
    coloured = _COLOURS[ids]
    blend = (frame * (1 - alpha) + coloured * alpha).astype(np.uint8)
    picture = np.where(ids[..., None] > 0, blend, frame)
    if outline:
        thickness = max(1, round(min(ids.shape) / 240))  # 2 px at 480p, 3 px at 720p
        for obj in np.unique(ids[ids > 0]).tolist():
            contours, _ = cv2.findContours(
                (ids == obj).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE
            )
            cv2.drawContours(picture, contours, -1, _COLOURS[obj].tolist(), thickness)
    return picture
