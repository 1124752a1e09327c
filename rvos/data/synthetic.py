"""The embedded synthetic dataset: procedurally generated videos in the exact DAVIS-2017 layout.

Real VOS data cannot be downloaded on offline machines, so the default pipeline trains and scores on
this. It is a real, if small, video object segmentation problem:
- 1..max_objects objects per video, each with its own shape (ellipse, rectangle, triangle, star,
  blob) and its own saturated patterned texture (stripes, checkerboard, dots, rings, noise) and colours;
- a textured, moving background: a large low-frequency colour field with fine grain and faint
  clutter, panned like a slow camera move;
- objects move with smooth random velocities, rotate, change scale, occlude each other (fixed depth
  order), and leave the frame and come back;
- every object is clearly visible in frame 0 (the one-shot protocol gives its mask there), so the
  first frame holds ids 1..K.

Everything comes from `numpy.random.Generator`s seeded by (seed, split, video index), so the output
is byte-identical for the same params and library versions, and video k does not change when the
number of videos does.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from rvos.config import SyntheticConfig
from rvos.masks import encode_mask

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
SHAPES = ("ellipse", "rectangle", "triangle", "star", "blob")
TEXTURES = ("stripes", "checker", "dots", "rings", "noise")
JPEG_QUALITY = 90


@dataclass
class MovingObject:
    texture: np.ndarray  # (S, S, 3) uint8, the object's appearance in its own frame
    shape: np.ndarray  # (S, S) uint8 {0, 1}
    centre: np.ndarray  # (x, y) in pixels
    velocity: np.ndarray  # pixels per frame
    angle: float  # degrees
    spin: float  # degrees per frame
    scale: float
    growth: float  # scale change per frame


# ----------------------------------------------------------------------------------- appearance


def saturated_colour(rng: np.random.Generator) -> np.ndarray:
    """A bright, saturated RGB colour (objects), from a random hue."""
    hsv = np.array([[[rng.integers(0, 180), rng.integers(170, 256), rng.integers(150, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def pattern(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size) float pattern in [0, 1] of a random kind, period 6..16 px, random orientation."""
    kind = TEXTURES[rng.integers(len(TEXTURES))]
    period = rng.uniform(6, 16)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    if kind == "stripes":
        return (np.sin(2 * np.pi * u / period) > 0).astype(np.float32)
    if kind == "checker":
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == "dots":
        du, dv = (u % period) - period / 2, (v % period) - period / 2
        return (du**2 + dv**2 < (period * 0.3) ** 2).astype(np.float32)
    if kind == "rings":
        r = np.hypot(xx - size / 2, yy - size / 2)
        return (np.sin(2 * np.pi * r / period) > 0).astype(np.float32)
    coarse = rng.random((size // 6 + 2, size // 6 + 2)).astype(np.float32)
    return (cv2.resize(coarse, (size, size), interpolation=cv2.INTER_NEAREST) > 0.5).astype(np.float32)


def object_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    first, second = saturated_colour(rng), saturated_colour(rng) * rng.uniform(0.2, 0.6)
    mix = pattern(rng, size)[..., None]
    return np.clip(first * mix + second * (1 - mix), 0, 255).astype(np.uint8)


def object_shape(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size) {0,1} mask of a random shape filling most of the square."""
    mask = np.zeros((size, size), np.uint8)
    c = size / 2
    kind = SHAPES[rng.integers(len(SHAPES))]
    if kind == "ellipse":
        axes = (int(c * rng.uniform(0.6, 0.95)), int(c * rng.uniform(0.45, 0.95)))
        cv2.ellipse(mask, (int(c), int(c)), axes, 0, 0, 360, 1, -1)
        return mask
    if kind == "rectangle":
        w, h = c * rng.uniform(0.6, 0.95), c * rng.uniform(0.4, 0.95)
        points = np.array([[c - w, c - h], [c + w, c - h], [c + w, c + h], [c - w, c + h]])
    elif kind == "triangle":
        angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2]) + rng.uniform(-0.3, 0.3, 3)
        points = np.stack([c + 0.95 * c * np.cos(angles), c + 0.95 * c * np.sin(angles)], axis=1)
    elif kind == "star":
        spikes = rng.integers(4, 7)
        angles = np.arange(2 * spikes) * np.pi / spikes + rng.uniform(0, np.pi)
        radii = np.where(np.arange(2 * spikes) % 2 == 0, 0.95, rng.uniform(0.4, 0.6)) * c
        points = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], axis=1)
    else:  # blob: a smooth random radial profile
        angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        harmonics = sum(rng.uniform(-0.15, 0.15) * np.cos(k * angles + rng.uniform(0, 6)) for k in (2, 3, 5))
        radii = c * np.clip(0.75 + harmonics, 0.4, 0.95)
        points = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], axis=1)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A large (2H, 2W) low-contrast, low-saturation colour field with grain and faint clutter."""
    big_h, big_w = 2 * height, 2 * width
    base = rng.uniform(60, 170, size=3).astype(np.float32)
    field = np.zeros((big_h, big_w, 3), np.float32)
    for cells in (3, 7, 17):  # smooth multi-scale colour noise
        coarse = rng.normal(0, 1, size=(cells, cells * 2, 3)).astype(np.float32)
        field += cv2.resize(coarse, (big_w, big_h), interpolation=cv2.INTER_CUBIC) * (24 / cells**0.5)
    grey = field.mean(axis=2, keepdims=True)
    field = grey + 0.35 * (field - grey)  # desaturate: the background is duller than the objects
    image = base + field + rng.normal(0, 4, size=(big_h, big_w, 1)).astype(np.float32)
    for _ in range(rng.integers(10, 25)):  # faint clutter: low-contrast shapes
        size = int(rng.integers(20, 80))
        shade = (base + rng.uniform(-25, 25)).tolist()
        centre = (int(rng.integers(0, big_w)), int(rng.integers(0, big_h)))
        if rng.random() < 0.5:
            cv2.circle(image, centre, size // 2, shade, -1)
        else:
            cv2.rectangle(image, centre, (centre[0] + size, centre[1] + size // 2), shade, -1)
    return np.clip(image, 0, 255).astype(np.uint8)


# -------------------------------------------------------------------------------------- motion


def place(obj: MovingObject) -> np.ndarray:
    """2x3 affine matrix putting the object's square patch at its centre, angle and scale."""
    size = obj.shape.shape[0]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), obj.angle, obj.scale)
    matrix[:, 2] += obj.centre - size / 2
    return matrix


def new_object(rng: np.random.Generator, height: int, width: int) -> MovingObject:
    area = rng.uniform(0.05, 0.16) * height * width  # of the patch; the shape fills ~60% of it
    size = int(np.clip(np.sqrt(area), 16, min(height, width)))
    speed = rng.uniform(0.003, 0.015) * width
    heading = rng.uniform(0, 2 * np.pi)
    return MovingObject(
        texture=object_texture(rng, size),
        shape=object_shape(rng, size),
        centre=rng.uniform([size * 0.6, size * 0.6], [width - size * 0.6, height - size * 0.6]),
        velocity=speed * np.array([np.cos(heading), np.sin(heading)]),
        angle=rng.uniform(0, 360),
        spin=rng.uniform(-3, 3),
        scale=1.0,
        growth=rng.uniform(-0.008, 0.008),
    )


def step(obj: MovingObject, rng: np.random.Generator, height: int, width: int) -> None:
    """Advance one frame: smooth random acceleration; objects may leave the frame, then turn back."""
    obj.velocity = obj.velocity * 0.97 + rng.normal(0, 0.002 * width, size=2)
    speed = np.linalg.norm(obj.velocity)
    if speed > 0.02 * width:
        obj.velocity *= 0.02 * width / speed
    obj.centre = obj.centre + obj.velocity
    obj.angle += obj.spin
    obj.scale = float(np.clip(obj.scale + obj.growth, 0.7, 1.4))
    if obj.scale in (0.7, 1.4):
        obj.growth = -obj.growth
    # The turning point lies beyond the border: an object can leave completely, then re-enter.
    margin = 0.5 * obj.shape.shape[0] * obj.scale
    for axis, limit in ((0, width), (1, height)):
        if obj.centre[axis] < -margin and obj.velocity[axis] < 0:
            obj.velocity[axis] = -obj.velocity[axis]
        if obj.centre[axis] > limit + margin and obj.velocity[axis] > 0:
            obj.velocity[axis] = -obj.velocity[axis]


# ------------------------------------------------------------------------------------ rendering


def render(
    scene: np.ndarray, objects: list[MovingObject], height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Composite objects (index order = back to front) over the background -> (RGB, id mask)."""
    image = scene.copy()
    ids = np.zeros((height, width), np.uint8)
    for index, obj in enumerate(objects):
        matrix = place(obj)
        shape = cv2.warpAffine(obj.shape, matrix, (width, height), flags=cv2.INTER_NEAREST)
        texture = cv2.warpAffine(obj.texture, matrix, (width, height), flags=cv2.INTER_LINEAR)
        inside = shape > 0
        image[inside] = texture[inside]
        ids[inside] = index + 1
    return image, ids


def visible_enough(objects: list[MovingObject], ids: np.ndarray, height: int, width: int) -> bool:
    """Frame 0 must show every object well: >= 1% of the frame and >= 60% of its own area."""
    for index, obj in enumerate(objects):
        visible = int((ids == index + 1).sum())
        full = int(obj.shape.sum())
        if visible < 0.01 * height * width or visible < 0.6 * full:
            return False
    return True


def generate_video(
    rng: np.random.Generator, cfg: SyntheticConfig
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    height, width = cfg.height, cfg.width
    frames_count = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    count = int(rng.integers(1, cfg.max_objects + 1))
    world = background(rng, height, width)
    pan = rng.uniform(-0.004, 0.004, size=2) * np.array([width, height])
    for _attempt in range(100):  # re-draw the start until every object is clearly visible in frame 0
        objects = [new_object(rng, height, width) for _ in range(count)]
        origin = np.array([width / 2, height / 2])
        scene = world[:height, :width]
        _, ids = render(scene, objects, height, width)
        if visible_enough(objects, ids, height, width):
            break
    frames, masks = [], []
    for t in range(frames_count):
        x, y = np.round(origin + pan * t).astype(int) % np.array([width, height])
        scene = world[y : y + height, x : x + width]
        image, ids = render(scene, objects, height, width)
        noisy = image.astype(np.int16) + rng.integers(-3, 4, size=image.shape, dtype=np.int16)
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
        masks.append(ids)
        for obj in objects:
            step(obj, rng, height, width)
    return frames, masks


def generate_synthetic_davis(cfg: SyntheticConfig, seed: int, out_dir: Path) -> None:
    """Fill the empty folder `out_dir` with the dataset (JPEGImages, Annotations, ImageSets)."""
    out_dir = Path(out_dir)
    jobs = [
        (split_index, split, index)
        for split_index, split in enumerate(SPLITS)
        for index in range(cfg.train_videos if split == "train" else cfg.val_videos)
    ]
    names: dict[str, list[str]] = {split: [] for split in SPLITS}
    for split_index, split, index in tqdm(jobs, desc="synthetic videos", unit="video"):
        name = f"synth-{split}-{index:04d}"
        rng = np.random.default_rng(np.random.SeedSequence([seed, split_index, index]))
        frames, masks = generate_video(rng, cfg)
        image_dir = out_dir / "JPEGImages" / "480p" / name
        mask_dir = out_dir / "Annotations" / "480p" / name
        image_dir.mkdir(parents=True)
        mask_dir.mkdir(parents=True)
        for t, (frame, mask) in enumerate(zip(frames, masks)):
            ok, jpeg = cv2.imencode(
                ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
            )
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            (image_dir / f"{t:05d}.jpg").write_bytes(jpeg.tobytes())
            (mask_dir / f"{t:05d}.png").write_bytes(encode_mask(mask))
        names[split].append(name)
    image_sets = out_dir / "ImageSets" / "2017"
    image_sets.mkdir(parents=True)
    for split in SPLITS:
        (image_sets / f"{split}.txt").write_text("".join(f"{n}\n" for n in sorted(names[split])))
    log.info(
        "synthetic dataset: %d train and %d val videos at %dx%d in %s",
        cfg.train_videos,
        cfg.val_videos,
        cfg.height,
        cfg.width,
        out_dir,
    )
