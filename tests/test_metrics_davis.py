"""DAVIS-2017 metrics: parity with the official code's scores, hand-computed cases, refused inputs."""

import csv
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from rvos.errors import RvosError
from rvos.masks import read_mask, write_mask
from rvos.metrics.davis import (
    FrameScorer,
    boundary_crop,
    boundary_radius,
    decay_indices,
    dilate_crop,
    disk,
    f_from_counts,
    f_measure,
    jaccard,
    object_statistics,
    overlap,
    seg2bmap,
)
from rvos.metrics.evaluate import evaluate_davis

FIXTURE = Path(__file__).parent / "data" / "davis-eval-mini"
TASKS = ["semi-supervised", "unsupervised"]
CSV_NAMES = ["global_results-val.csv", "per-sequence_results-val.csv"]


def _evaluate(results: Path, task: str, out: Path, workers: int = 1, davis: Path = FIXTURE / "DAVIS") -> dict:
    return evaluate_davis(davis, results, task, "val", out, workers=workers)


def _copy_results(tmp_path: Path, task: str) -> Path:
    target = tmp_path / "results"
    shutil.copytree(FIXTURE / "results" / task, target)
    return target


# --------------------------------------------------------------------------------------------------
# Parity with the official scores of the fixture
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_fixture_parity_full_precision(tmp_path, task):
    report = _evaluate(FIXTURE / "results" / task, task, tmp_path)
    expected = json.loads((FIXTURE / "expected" / task / "metrics_full-val.json").read_text())
    for name, value in expected["global"].items():
        assert report["global"][name] == pytest.approx(value, abs=1e-6), name
    # Official labels follow proposal order in the unsupervised task, and so do ours: compare by label.
    assert list(report["per_object"]) == list(expected["per_object"])
    for label, values in expected["per_object"].items():
        for name, value in values.items():
            assert report["per_object"][label][name] == pytest.approx(value, abs=1e-6), (label, name)


@pytest.mark.parametrize("task", TASKS)
def test_fixture_parity_per_object_csv(tmp_path, task):
    report = _evaluate(FIXTURE / "results" / task, task, tmp_path)
    with open(FIXTURE / "expected" / task / "per-object_full-val.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["Object"] for row in rows] == list(report["per_object"])
    for row in rows:
        for name, value in row.items():
            if name != "Object":
                assert report["per_object"][row["Object"]][name] == pytest.approx(float(value), abs=1e-9)


@pytest.mark.parametrize("task", TASKS)
def test_fixture_csvs_are_byte_identical(tmp_path, task):
    _evaluate(FIXTURE / "results" / task, task, tmp_path)
    for name in CSV_NAMES:
        assert (tmp_path / name).read_bytes() == (FIXTURE / "expected" / task / name).read_bytes(), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["task"] == task and metrics["num_objects"] == 7


@pytest.mark.parametrize("task", TASKS)
def test_one_and_two_workers_give_identical_numbers(tmp_path, task):
    one = _evaluate(FIXTURE / "results" / task, task, tmp_path / "one", workers=1)
    two = _evaluate(FIXTURE / "results" / task, task, tmp_path / "two", workers=2)
    assert one == two
    for name in [*CSV_NAMES, "metrics.json"]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_unsupervised_report_names_the_matching(tmp_path):
    report = _evaluate(FIXTURE / "results" / "unsupervised", "unsupervised", tmp_path)
    assert set(report["matching"]) == set(report["per_object"])
    proposals = [
        m["proposal"] for label, m in report["matching"].items() if label.startswith("fake-polygons")
    ]
    assert proposals == sorted(proposals)  # rows in proposal order, as in the official CSV


def test_semi_supervised_ignores_first_and_last_result_frames(tmp_path):
    results = _copy_results(tmp_path, "semi-supervised")
    for sequence in results.iterdir():
        frames = sorted(sequence.glob("*.png"))
        frames[0].unlink()
        frames[-1].unlink()
    _evaluate(results, "semi-supervised", tmp_path / "out")
    for name in CSV_NAMES:
        assert (tmp_path / "out" / name).read_bytes() == (
            FIXTURE / "expected" / "semi-supervised" / name
        ).read_bytes()


# --------------------------------------------------------------------------------------------------
# J and F: the special-case tables and hand-computed values
# --------------------------------------------------------------------------------------------------

EMPTY = np.zeros((20, 30), bool)
SQUARE = np.zeros((20, 30), bool)
SQUARE[5:10, 5:10] = True


@pytest.mark.parametrize(
    ("gt", "pred", "expected"),
    [(EMPTY, EMPTY, 1.0), (EMPTY, SQUARE, 0.0), (SQUARE, EMPTY, 0.0), (SQUARE, SQUARE, 1.0)],
)
def test_j_special_cases(gt, pred, expected):
    assert jaccard(gt, pred) == expected


@pytest.mark.parametrize(
    ("gt", "pred", "expected"),
    [(EMPTY, EMPTY, 1.0), (EMPTY, SQUARE, 0.0), (SQUARE, EMPTY, 0.0), (SQUARE, SQUARE, 1.0)],
)
def test_f_special_cases(gt, pred, expected):
    assert f_measure(gt, pred) == expected


def test_f_from_counts_table():
    # columns: (n_pred, n_gt, hit_pred, hit_gt) -> F
    cases = {
        (0, 5, 0, 0): 0.0,  # precision 1, recall 0
        (5, 0, 0, 0): 0.0,  # precision 0, recall 1
        (0, 0, 0, 0): 1.0,  # both empty
        (4, 4, 0, 0): 0.0,  # P + R = 0
        (4, 8, 2, 4): 0.5,  # P = R = 0.5
        (10, 10, 10, 5): 2 * 1.0 * 0.5 / 1.5,
    }
    counts = np.array(list(cases), dtype=np.int64).T
    assert f_from_counts(*counts).tolist() == list(cases.values())


def test_j_hand_computed_and_void():
    pred = np.zeros((20, 30), bool)
    pred[5:10, 7:12] = True  # shifted by 2: 15 shared pixels, union 35
    assert jaccard(SQUARE, pred) == 15 / 35
    void = np.zeros((20, 30), bool)
    void[:, 10:] = True  # hides the 10 prediction-only pixels: 15 / 25
    assert jaccard(SQUARE, pred, void) == 15 / 25
    assert jaccard(EMPTY, pred, pred) == 1.0  # a prediction entirely in void is no prediction


def test_f_within_and_beyond_the_tolerance():
    gt = np.zeros((480, 854), bool)
    gt[100:200, 100:300] = True
    near = np.roll(gt, 8, axis=1)  # 8 px: exactly the 480x854 tolerance
    far = np.roll(gt, 30, axis=0)
    assert f_measure(gt, near) == 1.0
    assert 0 < f_measure(gt, far) < 1  # only the vertical sides still match


def test_boundary_radius_values():
    sizes = {(480, 854): 8, (480, 910): 9, (360, 640): 6, (720, 1280): 12, (1080, 1920): 18}
    assert {size: boundary_radius(*size) for size in sizes} == sizes


def test_disk_is_the_euclidean_disk():
    assert disk(2).tolist() == [
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
    ]
    assert disk(8).shape == (17, 17) and disk(8).sum() == 197


def test_seg2bmap_hand_computed():
    mask = np.zeros((5, 5), bool)
    mask[1:3, 1:3] = True
    # Outside pixels on the top/left edges, inside pixels on the bottom/right edges.
    assert seg2bmap(mask).astype(int).tolist() == [
        [1, 1, 1, 0, 0],
        [1, 0, 1, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]


def test_seg2bmap_image_border_is_never_a_boundary():
    full = np.ones((6, 7), bool)
    assert not seg2bmap(full).any()
    corner = np.zeros((4, 4), bool)
    corner[2:, 2:] = True  # touches the bottom and right borders
    assert seg2bmap(corner).astype(int).tolist() == [
        [0, 0, 0, 0],
        [0, 1, 1, 1],
        [0, 1, 0, 0],
        [0, 1, 0, 0],
    ]


def _random_ids(rng: np.random.Generator, shape: tuple[int, int], n_ids: int) -> np.ndarray:
    """Overlapping random ellipses (some touching the border), as an id map."""
    ids = np.zeros(shape, np.uint8)
    for obj_id in range(1, n_ids + 1):
        center = (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0])))
        axes = (int(rng.integers(3, shape[1] // 3)), int(rng.integers(3, shape[0] // 3)))
        cv2.ellipse(ids, center, axes, float(rng.uniform(0, 180)), 0, 360, obj_id, -1)
    return ids


@pytest.mark.parametrize("shape", [(60, 90), (120, 200), (480, 854)])
def test_cropped_boundaries_equal_full_frame(shape):
    rng = np.random.default_rng(sum(shape))
    radius = boundary_radius(*shape)
    for _ in range(3):
        ids = _random_ids(rng, shape, 3)
        for obj_id in range(1, 4):
            mask = ids == obj_id
            crop = boundary_crop(mask)
            full = np.zeros(shape, bool)
            near = np.zeros(shape, bool)
            if crop is not None:
                full[crop.y : crop.y + crop.pixels.shape[0], crop.x : crop.x + crop.pixels.shape[1]] = (
                    crop.pixels
                )
                grown = dilate_crop(crop, radius, shape)
                near[grown.y : grown.y + grown.pixels.shape[0], grown.x : grown.x + grown.pixels.shape[1]] = (
                    grown.pixels
                )
                assert overlap(crop, grown) == crop.count()
            assert np.array_equal(full, seg2bmap(mask))
            reference = cv2.dilate(seg2bmap(mask).view(np.uint8), disk(radius)).view(bool)
            assert np.array_equal(near, reference)


@pytest.mark.parametrize("use_void", [False, True])
def test_frame_scorer_equals_the_reference_measures(use_void):
    rng = np.random.default_rng(7)
    shape = (120, 200)
    for _ in range(4):
        gt, pred = _random_ids(rng, shape, 3), _random_ids(rng, shape, 4)
        gt[rng.random(shape) < 0.02] = 255  # scattered void
        void = gt == 255 if use_void else None
        pred_ids = np.repeat(np.arange(1, 6), 4)
        gt_ids = np.tile(np.arange(1, 5), 5)
        j, f = FrameScorer(gt, pred, boundary_radius(*shape), use_void).scores(pred_ids, gt_ids)
        for i, (p, g) in enumerate(zip(pred_ids, gt_ids)):
            assert j[i] == jaccard(gt == g, pred == p, void), (p, g)
            assert f[i] == f_measure(gt == g, pred == p, void), (p, g)


# --------------------------------------------------------------------------------------------------
# Per-object statistics
# --------------------------------------------------------------------------------------------------


def test_statistics_of_a_ramp():
    assert object_statistics(np.arange(8, dtype=np.float64)) == (3.5, 0.875, -5.0)


def test_recall_is_strictly_above_one_half():
    _, recall, _ = object_statistics(np.array([0.5, 0.5, 0.51, 1.0]))
    assert recall == 0.5


@pytest.mark.parametrize(
    ("n_frames", "edges"),
    [
        (8, [0, 2, 4, 5, 7]),
        (10, [0, 2, 5, 7, 9]),
        (48, [0, 12, 24, 35, 47]),
        (102, [0, 25, 51, 76, 101]),
        (300, [0, 75, 150, 224, 43]),  # the official uint8 cast wraps 299 to 43
    ],
)
def test_decay_indices(n_frames, edges):
    assert decay_indices(n_frames).tolist() == edges


def test_decay_bins_share_their_edge_frame():
    values = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5])  # N = 8: bins [0:3] and [5:8]
    _, _, decay = object_statistics(values)
    assert decay == pytest.approx(2 / 3 - 0.5)


def test_decay_is_nan_past_256_frames_like_the_official_code():
    mean, recall, decay = object_statistics(np.full(300, 0.8))
    assert mean == pytest.approx(0.8) and recall == 1.0
    assert math.isnan(decay)


# --------------------------------------------------------------------------------------------------
# Refused inputs: RvosError naming the file, where the official code exits 0 without scores
# --------------------------------------------------------------------------------------------------


def test_id_above_the_number_of_objects_is_refused(tmp_path):
    with pytest.raises(RvosError, match=r"fake-ellipses/00003\.png: object id 3 is above the 2 objects"):
        _evaluate(FIXTURE / "results" / "semi-supervised-bad-id", "semi-supervised", tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_more_than_20_proposals_is_refused(tmp_path):
    results = _copy_results(tmp_path, "unsupervised")
    frame = results / "fake-small" / "00004.png"
    ids = read_mask(frame)
    ids[0:3, 0:3] = 21
    write_mask(frame, ids)
    with pytest.raises(RvosError, match=r"fake-small/00004\.png: proposal id 21 is above the 20 proposals"):
        _evaluate(results, "unsupervised", tmp_path / "out")


def test_twenty_proposals_are_accepted(tmp_path):
    results = _copy_results(tmp_path, "unsupervised")
    frame = results / "fake-small" / "00004.png"
    ids = read_mask(frame)
    ids[0:3, 0:3] = 20  # a tiny extra proposal: ignored by the matching
    write_mask(frame, ids)
    report = _evaluate(results, "unsupervised", tmp_path / "out")
    assert report["num_objects"] == 7


@pytest.mark.parametrize("task", TASKS)
def test_missing_result_frame_is_named(tmp_path, task):
    results = _copy_results(tmp_path, task)
    (results / "fake-polygons" / "00004.png").unlink()
    with pytest.raises(RvosError, match=r"fake-polygons/00004\.png: mask file is missing"):
        _evaluate(results, task, tmp_path / "out")


def test_missing_result_sequence_is_named(tmp_path):
    results = _copy_results(tmp_path, "semi-supervised")
    shutil.rmtree(results / "fake-small")
    with pytest.raises(RvosError, match=r"no results folder for sequence fake-small"):
        _evaluate(results, "semi-supervised", tmp_path / "out")


def test_rgb_result_is_refused(tmp_path):
    results = _copy_results(tmp_path, "semi-supervised")
    frame = results / "fake-ellipses" / "00002.png"
    Image.open(frame).convert("RGB").save(frame)
    with pytest.raises(RvosError, match=r"fake-ellipses/00002\.png: mask is RGB"):
        _evaluate(results, "semi-supervised", tmp_path / "out")


@pytest.mark.parametrize("task", TASKS)
def test_result_of_another_size_is_refused(tmp_path, task):
    results = _copy_results(tmp_path, task)
    frame = results / "fake-small" / "00003.png"
    write_mask(frame, np.zeros((480, 854), np.uint8))  # fake-small is 360x640
    with pytest.raises(RvosError, match=r"fake-small/00003\.png: mask is 854x480, but the ground truth"):
        _evaluate(results, task, tmp_path / "out")


def test_missing_image_set_is_refused(tmp_path):
    with pytest.raises(RvosError, match="image set file is missing"):
        evaluate_davis(
            FIXTURE / "DAVIS", FIXTURE / "results" / "semi-supervised", "semi-supervised", "nope", tmp_path
        )


def test_bad_worker_count_is_refused(tmp_path):
    with pytest.raises(RvosError, match="--workers"):
        _evaluate(FIXTURE / "results" / "semi-supervised", "semi-supervised", tmp_path, workers=0)


# --------------------------------------------------------------------------------------------------
# Protocol details on small hand-built data sets
# --------------------------------------------------------------------------------------------------


def _tiny_davis(root: Path, gt_frames: list[np.ndarray], unsupervised: bool = False) -> Path:
    folder = "Annotations_unsupervised" if unsupervised else "Annotations"
    for t, ids in enumerate(gt_frames):
        write_mask(root / folder / "480p" / "seq" / f"{t:05d}.png", ids)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("seq\n")
    return root


def _write_results(root: Path, frames: list[np.ndarray]) -> Path:
    for t, ids in enumerate(frames):
        write_mask(root / "seq" / f"{t:05d}.png", ids)
    return root


def test_phantom_object_counts_as_perfect_when_never_predicted(tmp_path):
    gt = np.zeros((40, 60), np.uint8)
    gt[5:15, 5:15] = 1
    gt[20:30, 30:40] = 3  # id 2 is missing: objects are 1..3, object 2 is empty everywhere
    davis = _tiny_davis(tmp_path / "DAVIS", [gt] * 4)
    pred = gt.copy()
    pred[gt == 3] = 0  # object 3 is never predicted
    results = _write_results(tmp_path / "res", [pred] * 4)
    report = _evaluate(results, "semi-supervised", tmp_path / "out", davis=davis)
    assert list(report["per_object"]) == ["seq_1", "seq_2", "seq_3"]
    assert [report["per_object"][k]["J-Mean"] for k in ("seq_1", "seq_2", "seq_3")] == [1.0, 1.0, 0.0]
    assert report["num_frames_scored"] == 2  # frames 1..T-2


def test_unsupervised_matching_and_missing_proposals(tmp_path):
    gt = np.zeros((40, 60), np.uint8)
    gt[5:15, 5:15] = 1
    gt[20:30, 30:40] = 2
    davis = _tiny_davis(tmp_path / "DAVIS", [gt] * 3, unsupervised=True)
    pred = np.zeros_like(gt)
    pred[20:30, 30:40] = 1  # proposal 1 is object 2; object 1 is never found
    results = _write_results(tmp_path / "res", [pred] * 3)
    report = _evaluate(results, "unsupervised", tmp_path / "out", davis=davis)
    assert report["matching"] == {
        "seq_1": {"proposal": 1, "gt_object": 2},
        "seq_2": {"proposal": 2, "gt_object": 1},  # a padded empty proposal
    }
    assert report["per_object"]["seq_1"]["J-Mean"] == 1.0
    assert report["per_object"]["seq_2"]["F-Mean"] == 0.0
    assert report["num_frames_scored"] == 3  # every frame


def test_unsupervised_falls_back_to_semi_supervised_annotations(tmp_path, caplog):
    gt = np.zeros((40, 60), np.uint8)
    gt[5:15, 5:15] = 1
    davis = _tiny_davis(tmp_path / "DAVIS", [gt] * 3, unsupervised=False)
    results = _write_results(tmp_path / "res", [gt] * 3)
    report = _evaluate(results, "unsupervised", tmp_path / "out", davis=davis)
    assert report["global"]["J&F-Mean"] == 1.0
    assert "Annotations_unsupervised" in caplog.text


def test_too_short_sequence_is_refused_for_semi_supervised(tmp_path):
    gt = np.zeros((40, 60), np.uint8)
    gt[5:15, 5:15] = 1
    davis = _tiny_davis(tmp_path / "DAVIS", [gt] * 2)
    results = _write_results(tmp_path / "res", [gt] * 2)
    with pytest.raises(RvosError, match="needs at least 3"):
        _evaluate(results, "semi-supervised", tmp_path / "out", davis=davis)
