"""Fuzzing (hypothesis) the readers and checks that meet users' files: whatever the input, the result
is a value or the project's one-line `RvosError`, never another exception.

Each test is bounded (`FUZZ`: 50 examples, no per-example deadline, no example database written into
the checkout), so the suite stays fast; a failure prints the smallest input that breaks the rule.
"""

import io
import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from rvos.data.layout import check_davis_layout, find_dataset_root
from rvos.errors import RvosError
from rvos.masks import decode_mask, write_mask
from rvos.metrics.davis import FrameScorer, boundary_radius, f_measure, jaccard, score_sequence

FUZZ = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decodes_or_refuses(data: bytes) -> np.ndarray | None:
    """decode_mask's contract: an (H, W) uint8 id map, or an RvosError naming the file in one line."""
    try:
        ids = decode_mask(data, "fuzz.png")
    except RvosError as err:
        message = str(err)
        assert message.startswith("fuzz.png: ") and "\n" not in message, message
        return None
    assert ids.dtype == np.uint8 and ids.ndim == 2
    return ids


# ------------------------------------------------------------------------------------ mask reader


@FUZZ
@given(st.binary(max_size=4000))
def test_mask_reader_on_random_bytes(data):
    decodes_or_refuses(data)


@FUZZ
@given(st.binary(max_size=2000))
def test_mask_reader_on_random_bytes_after_a_png_signature(data):
    decodes_or_refuses(PNG_SIGNATURE + data)


# The PNG modes PIL writes; only palette and grayscale masks are object ids.
MODES = ["1", "L", "LA", "P", "I;16", "RGB", "RGBA"]  # PIL cannot write "I" as PNG


@st.composite
def odd_pngs(draw) -> tuple[str, np.ndarray, bytes]:
    mode = draw(st.sampled_from(MODES))
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    bits = draw(st.sampled_from([8, 4, 2, 1])) if mode == "P" else 8  # 1-, 2-, 4-bit palette PNGs too
    pixels = draw(arrays(np.uint8, (height, width), elements=st.integers(0, 2**bits - 1)))
    if mode == "P":
        image = Image.fromarray(pixels, mode="P")
        image.putpalette(list(range(2**bits)) * 3)
    else:
        image = Image.fromarray(pixels, mode="L").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", bits=bits)
    return mode, pixels, buffer.getvalue()


@FUZZ
@given(odd_pngs(), st.floats(0.0, 1.0))
def test_mask_reader_on_pngs_of_every_mode_whole_or_cut(png, cut):
    mode, pixels, data = png
    ids = decodes_or_refuses(data)
    if mode in ("P", "L"):
        assert ids is not None and np.array_equal(ids, pixels)  # ids are read back exactly
    else:
        assert ids is None  # colour, alpha, 1-bit and 16-bit images are not id maps
    # the same file cut anywhere (a truncated copy): still an id map of that size or a clear error
    partial = decodes_or_refuses(data[: int(len(data) * cut)])
    assert partial is None or partial.shape == pixels.shape


# ------------------------------------------------------------------------------ DAVIS layout checks

# Names that make up a DAVIS tree, and a few that do not belong in one.
PARTS = ["JPEGImages", "Annotations", "480p", "ImageSets", "2017", "seq", "a", "DAVIS", "__MACOSX", ".x"]
FILES = [
    "train.txt",
    "val.txt",
    "00000.jpg",
    "00001.jpg",
    "00003.jpg",
    "1.jpg",
    "0000².jpg",
    "00000.png",
    "00002.png",
]
LIST_LINES = st.lists(st.sampled_from(["seq", "a", "..", "", "se/q", "b", " seq ", "\x00", "²"]), max_size=4)


@st.composite
def folder_trees(draw) -> list[tuple[tuple[str, ...], bytes | None]]:
    """(path parts, file content or None for a folder), for a handful of entries."""
    entries = []
    for _ in range(draw(st.integers(0, 14))):
        folders = tuple(draw(st.lists(st.sampled_from(PARTS), max_size=4)))
        if draw(st.booleans()):
            name = draw(st.sampled_from(FILES))
            if name.endswith(".txt"):
                content = "\n".join(draw(LIST_LINES)).encode()
                content = draw(st.sampled_from([content, b"\xff\xfe\x00bad"]))
            else:
                content = draw(st.binary(max_size=8))
            entries.append((folders + (name,), content))
        elif folders:
            entries.append((folders, None))
    return entries


def davis_tree() -> list[tuple[tuple[str, ...], bytes | None]]:
    """A small DAVIS tree that passes the checks (sequences `seq` and `a`, 3 frames each)."""
    entries = [(("ImageSets", "2017", "train.txt"), b"seq\n"), (("ImageSets", "2017", "val.txt"), b"a\n")]
    for sequence in ("seq", "a"):
        for t in range(3):
            entries.append((("JPEGImages", "480p", sequence, f"{t:05d}.jpg"), b"jpg"))
            entries.append((("Annotations", "480p", sequence, f"{t:05d}.png"), b"png"))
    return entries


@st.composite
def damaged_davis_trees(draw) -> list[tuple[tuple[str, ...], bytes | None]]:
    """The valid tree with random entries left out and random ones added (in the valid tree's folders
    too), so that the deeper checks (first-frame annotation, frame numbers) are reached."""
    base = davis_tree()
    flags = st.sampled_from([True, True, True, False])  # most entries stay
    keep = draw(st.lists(flags, min_size=len(base), max_size=len(base)))
    kept = [entry for entry, flag in zip(base, keep, strict=True) if flag]
    extra = []
    for _ in range(draw(st.integers(0, 4))):
        folder = draw(st.sampled_from([("JPEGImages", "480p", "seq"), ("Annotations", "480p", "a"), ()]))
        extra.append((folder + (draw(st.sampled_from(FILES)),), b"x"))
    return [*kept, *extra, *draw(folder_trees())]


def build_tree(root: Path, entries: list[tuple[tuple[str, ...], bytes | None]]) -> None:
    for parts, content in entries:
        path = root.joinpath(*parts)
        if any(p.is_file() for p in [path, *path.parents]):
            continue  # a file already stands where a folder should go
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


@FUZZ
@given(st.one_of(folder_trees(), damaged_davis_trees()))
def test_davis_layout_checks_on_random_folder_trees(entries):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "data"
        root.mkdir()
        build_tree(root, entries)
        for check in (check_davis_layout, lambda r: find_dataset_root(r, check_davis_layout)):
            try:
                check(root)
            except RvosError as err:
                assert "\n" not in str(err) and scratch in str(err), str(err)  # one line naming a path


# ---------------------------------------------------------------------------------------- metrics

ID_VALUES = st.sampled_from([0, 0, 0, 1, 2, 3, 255])


@st.composite
def id_map_pairs(draw) -> tuple[np.ndarray, np.ndarray]:
    shape = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    gt = draw(arrays(np.uint8, shape, elements=ID_VALUES))
    pred = draw(arrays(np.uint8, shape, elements=st.integers(0, 6)))
    return gt, pred


def in_unit_interval(values) -> bool:
    values = np.asarray(values, dtype=np.float64)
    return bool(np.all((values >= 0.0) & (values <= 1.0)))


@FUZZ
@given(id_map_pairs(), st.booleans())
def test_frame_scores_are_in_the_unit_interval_and_match_the_plain_formulas(pair, use_void):
    gt, pred = pair
    ids = np.arange(1, 4)
    j, f = FrameScorer(gt, pred, boundary_radius(*gt.shape), use_void).scores(ids, ids)
    assert in_unit_interval(j) and in_unit_interval(f)
    void = gt == 255 if use_void else None
    for k, obj in enumerate(ids):
        assert math.isclose(j[k], jaccard(gt == obj, pred == obj, void), abs_tol=1e-12)
        if not use_void:  # the crop-based F equals the full-frame one
            assert math.isclose(f[k], f_measure(gt == obj, pred == obj), abs_tol=1e-12)


@st.composite
def scored_sequences(draw) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Ground-truth and result id maps of a few frames; sizes and ids sometimes wrong, frames missing."""
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    frames = draw(st.integers(1, 5))
    gts = [draw(arrays(np.uint8, (height, width), elements=ID_VALUES)) for _ in range(frames)]
    preds = []
    for _ in range(frames):
        shape = draw(st.sampled_from([(height, width), (height, width), (height + 1, width)]))
        top = draw(st.sampled_from([4, 4, 25]))  # 25: above the objects and the 20 proposals
        pred = draw(arrays(np.uint8, shape, elements=st.integers(0, top)))
        preds.append(draw(st.sampled_from([pred, pred, pred, None])))  # None: frame not written
    return gts, preds


@FUZZ
@given(scored_sequences(), st.sampled_from(["semi-supervised", "unsupervised"]))
def test_sequence_protocols_on_random_results(sequence, task):
    gts, preds = sequence
    with tempfile.TemporaryDirectory() as scratch:
        gt_dir, results = Path(scratch) / "gt", Path(scratch) / "results"
        gt_paths = []
        for t, (gt, pred) in enumerate(zip(gts, preds, strict=True)):
            gt_paths.append(gt_dir / f"{t:05d}.png")
            write_mask(gt_paths[-1], gt)
            if pred is not None:
                write_mask(results / f"{t:05d}.png", pred)
        results.mkdir(exist_ok=True)
        try:
            scores = score_sequence(task, "seq", gt_paths, results)
        except RvosError as err:
            assert "\n" not in str(err)
            return
    assert scores.j.shape == scores.f.shape
    assert in_unit_interval(scores.j) and in_unit_interval(scores.f)
