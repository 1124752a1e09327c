"""The gallery: the worst and best test videos as PNG strips, written by the `metrics` stage and shown
by `dvc plots show` as image plots next to the curves."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from rvos.gallery import HEADER, TILE_WIDTH, VideoFiles, pick_sequences, strip
from tests.dvc_project import make_repo, run, sh

NAMES = ["worst-1.png", "worst-2.png", "best-1.png", "best-2.png"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("gallery") / "project")
    sh(repo, "dvc", "repro", "--single-item", "metrics")
    return repo


def rows(*scores: float) -> list[dict]:
    return [{"sequence": f"s{i}", "J&F": s} for i, s in enumerate(scores)]


def test_pick_sequences_takes_the_extremes_without_repeats():
    picked = pick_sequences(rows(0.5, 0.1, 0.9, 0.3, 0.7))
    assert [(p.name, p.sequence) for p in picked] == [
        ("worst-1", "s1"),
        ("worst-2", "s3"),
        ("best-1", "s2"),
        ("best-2", "s4"),
    ]
    assert [p.sequence for p in pick_sequences(rows(0.2, 0.4, 0.3))] == ["s0", "s1"]
    assert [p.name for p in pick_sequences(rows(0.2))] == ["worst-1", "best-1"]  # the only video
    assert pick_sequences([]) == []


def test_dvc_plots_show_lists_the_gallery_images(repo):
    shown = json.loads(run(repo, "dvc", "plots", "show", "--json").stdout)
    assert "errors" not in shown, shown["errors"]
    shown = shown["data"]
    for name in NAMES:
        (entry,) = shown[f"reports/gallery/{name}"]
        assert entry["type"] == "image" and entry["revisions"] == ["workspace"]
    sh(repo, "dvc", "plots", "show", "-o", "dvc_plots")  # the HTML page: the images beside it
    html = (repo / "dvc_plots" / "index.html").read_text()
    assert all(f"reports_gallery_{name}" in html for name in NAMES)
    # the project's template (.dvc/config): Vega inlined, so that the page renders offline
    assert 'data-package="vega@5' in html and "cdn.jsdelivr" not in html


def test_strips_show_the_worst_and_best_videos(repo):
    # the predictions are the ground truth shifted by 1, 3, 5, 7 pixels: val-3 is worst, val-0 best
    per_sequence = (repo / "reports" / "per_sequence.csv").read_text()
    assert [line.split(",")[0] for line in per_sequence.splitlines()[1:]] == [f"val-{i}" for i in range(4)]
    raw, predictions = repo / "data" / "raw", repo / "outputs" / "predictions"

    def expected(video: str) -> np.ndarray:
        files = VideoFiles(
            raw / "JPEGImages/480p" / video, predictions / video, raw / "Annotations/480p" / video
        )
        return strip(files, "title")[HEADER:, :, ::-1]  # BGR, as OpenCV reads the PNG

    for name, video in (("worst-1", "val-3"), ("worst-2", "val-2"), ("best-1", "val-0"), ("best-2", "val-1")):
        picture = cv2.imread(str(repo / "reports" / "gallery" / f"{name}.png"))
        assert picture.shape[1] == 3 * (TILE_WIDTH + 2)  # frame | prediction | ground truth
        assert np.array_equal(picture[HEADER:], expected(video)), name
    assert not np.array_equal(expected("val-3"), expected("val-0"))
    tile = picture[HEADER : HEADER + 50]
    frame, prediction, truth = (tile[:, k * (TILE_WIDTH + 2) : (k + 1) * (TILE_WIDTH + 2)] for k in range(3))
    assert not np.array_equal(prediction, truth) and not np.array_equal(frame, truth)  # overlays drawn


def test_gallery_is_byte_deterministic(repo):
    before = {name: (repo / "reports" / "gallery" / name).read_bytes() for name in NAMES}
    sh(repo, "dvc", "repro", "--single-item", "--force", "metrics")
    assert {name: (repo / "reports" / "gallery" / name).read_bytes() for name in NAMES} == before
    assert sorted(p.name for p in (repo / "reports" / "gallery").iterdir()) == sorted(NAMES)


def test_unreadable_frame_fails_in_one_line_and_keeps_the_outputs(tmp_path):
    repo = make_repo(tmp_path / "project", val=2)
    env_run = [sys.executable, "-m", "stages.metrics"]
    assert subprocess.run(env_run, cwd=repo, capture_output=True).returncode == 0
    kept = {p: p.read_bytes() for p in (repo / "reports").rglob("*") if p.is_file()}
    (repo / "data/raw/JPEGImages/480p/val-1/00003.jpg").write_bytes(b"not a jpeg")
    result = subprocess.run(env_run, cwd=repo, capture_output=True, text=True)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("data/raw/JPEGImages/480p/val-1/00003.jpg: missing or not an image")
    )
    assert "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in (repo / "reports").rglob("*") if p.is_file()} == kept
