"""The YouTube-VOS local proxy on a tiny hand-built case with known values."""

from pathlib import Path

import numpy as np
import pytest

from rvos.errors import RvosError
from rvos.masks import write_mask
from rvos.metrics.youtube import evaluate_youtube

SIZE = (20, 20)  # F tolerance: ceil(0.008 * 28.3) = 1 px


def _square(top: int, left: int, obj_id: int, ids: np.ndarray | None = None) -> np.ndarray:
    ids = np.zeros(SIZE, np.uint8) if ids is None else ids.copy()
    ids[top : top + 4, left : left + 4] = obj_id
    return ids


EMPTY = np.zeros(SIZE, np.uint8)

# Video "a": object 1 (cat, seen) from frame 00000, object 2 (zebra, unseen) from frame 00005.
GT_A = {
    "00000": _square(2, 2, 1),
    "00005": _square(12, 12, 2, _square(2, 2, 1)),
    "00010": _square(12, 12, 2, _square(2, 2, 1)),
}
# Video "b": object 3 (cat) from frame 00000; it has left the scene by frame 00010.
GT_B = {"00000": _square(2, 2, 3), "00005": _square(2, 2, 3), "00010": EMPTY}

META = {
    "videos": {
        "a": {
            "objects": {
                "1": {"category": "cat", "frames": ["00000", "00005", "00010"]},
                "2": {"category": "zebra", "frames": ["00005", "00010"]},
            }
        },
        "b": {"objects": {"3": {"category": "cat", "frames": ["00000", "00005"]}}},
    }
}


def _write(folder: Path, frames: dict[str, np.ndarray]) -> None:
    for stem, ids in frames.items():
        write_mask(folder / f"{stem}.png", ids)


@pytest.fixture
def data(tmp_path):
    _write(tmp_path / "gt" / "a", GT_A)
    _write(tmp_path / "gt" / "b", GT_B)
    # Predictions. Video a: object 1 perfect at 00005 and lost at 00010 -> J = F = (1 + 0) / 2;
    # object 2 perfect at 00010, its only scored frame -> 1. Frame 00000 is first-appearance only and is
    # deliberately absent: it must not be read.
    _write(tmp_path / "pred" / "a", {"00005": GT_A["00005"], "00010": _square(12, 12, 2)})
    # Video b: object 3 far from its place at 00005 -> J = F = 0; empty where the ground truth is
    # empty at 00010 -> 1. Frame 00000 has garbage: first frames are not scored.
    _write(
        tmp_path / "pred" / "b", {"00000": _square(10, 10, 3), "00005": _square(14, 14, 3), "00010": EMPTY}
    )
    return tmp_path


def test_known_values(data):
    report = evaluate_youtube(data / "gt", META, {"cat"}, data / "pred", workers=1)
    assert report["proxy"] is True and "proxy" in report["protocol"]
    assert report["per_object"]["a/1"] == {"category": "cat", "seen": True, "frames": 2, "J": 0.5, "F": 0.5}
    assert report["per_object"]["a/2"] == {
        "category": "zebra",
        "seen": False,
        "frames": 1,
        "J": 1.0,
        "F": 1.0,
    }
    assert report["per_object"]["b/3"] == {"category": "cat", "seen": True, "frames": 2, "J": 0.5, "F": 0.5}
    assert (report["J_seen"], report["F_seen"], report["J_unseen"], report["F_unseen"]) == (
        0.5,
        0.5,
        1.0,
        1.0,
    )
    assert report["Overall"] == 0.75
    assert report["num_objects"] == {"seen": 2, "unseen": 1}


def test_partial_overlap_value(data):
    half = GT_A["00010"].copy()
    half[2:4, 2:6] = 0  # object 1 at 00010: only the bottom half of its 4x4 square
    _write(data / "pred" / "a", {"00010": half})
    report = evaluate_youtube(data / "gt", META, {"cat"}, data / "pred", workers=1)
    assert report["per_object"]["a/1"]["J"] == (1 + 0.5) / 2


def test_only_seen_objects_leave_unseen_undefined(data):
    meta = {"videos": {"b": META["videos"]["b"]}}
    report = evaluate_youtube(data / "gt", meta, {"cat"}, data / "pred", workers=1)
    assert report["J_unseen"] is None and report["F_unseen"] is None
    assert report["Overall"] == 0.5


def test_two_workers_agree(data):
    one = evaluate_youtube(data / "gt", META, {"cat"}, data / "pred", workers=1)
    two = evaluate_youtube(data / "gt", META, {"cat"}, data / "pred", workers=2)
    assert one == two


def test_missing_prediction_frame_is_named(data):
    (data / "pred" / "b" / "00010.png").unlink()
    with pytest.raises(RvosError, match=r"b/00010\.png: mask file is missing"):
        evaluate_youtube(data / "gt", META, {"cat"}, data / "pred", workers=1)


def test_prediction_size_mismatch_is_named(data):
    write_mask(data / "pred" / "a" / "00005.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(RvosError, match=r"a/00005\.png: mask is 10x10"):
        evaluate_youtube(data / "gt", META, {"cat"}, data / "pred", workers=1)


def test_malformed_meta_is_refused(data):
    with pytest.raises(RvosError, match="video a object 1 needs 'category'"):
        evaluate_youtube(
            data / "gt", {"videos": {"a": {"objects": {"1": {"frames": []}}}}}, set(), data / "pred"
        )
