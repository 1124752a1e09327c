"""A YouTube-VOS source past `download`: the metrics stage's proxy rows and gallery, the report, and
the whole pipeline (download -> ... -> report) on a tiny YouTube-VOS folder with tiny training."""

import base64
import csv
import json
import re
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from rvos.data.split import hold_out
from rvos.gallery import HEADER, TILE_WIDTH, VideoFiles, strip
from rvos.masks import decode_mask, read_mask, write_mask
from tests.factories import TINY_TRAINING, make_youtube_vos, run_stage_command, write_params

NAMES = ["worst-1", "worst-2", "best-1", "best-2"]
FRAMES = 5  # annotated frames 00000, 00005, ..., 00020 (YouTube-VOS annotates every 5th frame)
ALL = list(range(FRAMES))
LAST = [FRAMES - 1]  # an object seen only on the last annotated frame has no frame to be scored on


def per_sequence(project: Path) -> list[dict]:
    with (project / "reports" / "per_sequence.csv").open() as f:
        return list(csv.DictReader(f))


def gallery_videos(rows: list[dict]) -> dict[str, str]:
    """{picture name: video}: the two worst and two best rows of per_sequence.csv."""
    ranked = [r["sequence"] for r in sorted(rows, key=lambda r: (float(r["J&F"]), r["sequence"]))]
    return dict(zip(NAMES, [ranked[0], ranked[1], ranked[-1], ranked[-2]], strict=True))


def expected_strip(project: Path, video: str, stems: list[str], tmp: Path) -> np.ndarray:
    """The strip of exactly these frames (BGR, below the title band), built from a copy of their
    predictions only, so that it does not rely on the stage's choice of frames."""
    chosen = tmp / video
    chosen.mkdir(parents=True)
    for stem in stems:
        shutil.copy(project / "outputs" / "predictions" / video / f"{stem}.png", chosen)
    raw = project / "data" / "raw" / "train"
    files = VideoFiles(raw / "JPEGImages" / video, chosen, raw / "Annotations" / video)
    return strip(files, "title")[HEADER:, :, ::-1]


def check_gallery(project: Path, rows: list[dict], tmp: Path) -> dict[str, str]:
    """Each of the 4 pictures shows its video: the annotated frames after the first, evenly spread."""
    picks = gallery_videos(rows)
    gallery = project / "reports" / "gallery"
    assert sorted(p.name for p in gallery.iterdir()) == sorted(f"{n}.png" for n in NAMES)
    for name, video in picks.items():
        picture = cv2.imread(str(gallery / f"{name}.png"))
        tile_height = round(48 * TILE_WIDTH / 80)  # the videos are 48x80
        assert picture.shape == (HEADER + 3 * (tile_height + 2), 3 * (TILE_WIDTH + 2), 3), name
        expected = expected_strip(project, video, ["00005", "00015", "00020"], tmp / name)
        assert np.array_equal(picture[HEADER:], expected), (name, video)
    return picks


def check_report(project: Path, picks: dict[str, str]) -> None:
    page = (project / "reports" / "report.html").read_text()
    pngs = [base64.b64decode(d) for d in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
    for name, video in picks.items():
        assert f"{name}: {video} " in page  # the gallery's and the animations' titles
        assert (project / "reports" / "gallery" / f"{name}.png").read_bytes() in pngs
    assert len(re.findall(r'src="data:image/webp;base64,', page)) == 4  # one animation per picked video


# ------------------------------------------------------------------- metrics + report, no training

# yt-d's second object and both of yt-e's appear only on the last annotated frame: nothing to score
TEST_VIDEOS = {
    "yt-a": {1: ("cat", ALL), 2: ("zebra", [1, 2])},  # the zebra enters late and leaves again
    "yt-b": {1: ("cat", ALL), 2: ("zebra", [1, 2])},
    "yt-c": {1: ("cat", ALL), 2: ("zebra", [1, 2, 3])},
    "yt-d": {1: ("cat", ALL), 2: ("zebra", LAST)},
    "yt-e": {1: ("cat", LAST), 2: ("zebra", LAST)},
}


@pytest.fixture
def scored(tmp_path, monkeypatch) -> Path:
    """A project as `split` and `infer` leave it, the predictions the ground truth shifted sideways
    (1, 3, 5, ... pixels), then `python -m stages.metrics` and `python -m stages.report` run."""
    project = tmp_path / "project"
    raw = make_youtube_vos(project / "data" / "raw", {**TEST_VIDEOS, "yt-train": {1: ("cat", ALL)}})
    meta = json.loads((raw / "train" / "meta.json").read_text())["videos"]
    splits = project / "data" / "splits"
    splits.mkdir(parents=True)
    for name, videos in (("train-train", ["yt-train"]), ("train-val", list(TEST_VIDEOS))):
        (splits / f"{name}-meta.json").write_text(json.dumps({"videos": {v: meta[v] for v in videos}}))
    (splits / "test.txt").write_text("".join(f"{v}\n" for v in TEST_VIDEOS))
    for k, video in enumerate(TEST_VIDEOS):
        for gt in sorted((raw / "train" / "Annotations" / video).glob("*.png")):
            prediction = project / "outputs" / "predictions" / video / gt.name
            write_mask(prediction, np.roll(read_mask(gt), 1 + 2 * k, axis=1))
    write_params(project / "params.yaml", {"data": {"source": "youtubevos"}, "metrics": {"workers": 1}})
    for stage in ("metrics", "report"):
        result = run_stage_command(stage, project)
        assert result.returncode == 0, result.stderr[-3000:]
    return project


def test_youtube_rows_are_per_video_over_scored_objects(scored):
    proxy = json.loads((scored / "reports" / "evaluation" / "youtube-proxy.json").read_text())["per_object"]
    assert proxy["yt-d/2"]["J"] is None and proxy["yt-e/1"]["J"] is None and proxy["yt-e/2"]["J"] is None
    rows = {row["sequence"]: row for row in per_sequence(scored)}
    assert list(rows) == ["yt-a", "yt-b", "yt-c", "yt-d"]  # yt-e: no scored object, no row
    assert [int(rows[v]["objects"]) for v in rows] == [2, 2, 2, 1]
    for video, row in rows.items():
        objects = [v for label, v in proxy.items() if label.startswith(f"{video}/") and v["J"] is not None]
        j, f = np.mean([o["J"] for o in objects]), np.mean([o["F"] for o in objects])
        assert float(row["J"]) == pytest.approx(j, abs=1e-6) and float(row["F"]) == pytest.approx(f, abs=1e-6)
        assert float(row["J&F"]) == pytest.approx((j + f) / 2, abs=1e-6)
    metrics = json.loads((scored / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"Overall", "J_seen", "J_unseen", "F_seen", "F_unseen"}


def test_youtube_gallery_shows_the_worst_and_best_videos(scored, tmp_path):
    picks = check_gallery(scored, per_sequence(scored), tmp_path)
    assert "yt-e" not in picks.values()
    check_report(scored, picks)


def test_youtube_strip_skips_frames_without_ground_truth(tmp_path):
    # an every-frame release: frame 00002 has a picture and a prediction but no annotation
    raw = make_youtube_vos(tmp_path / "raw", {"v": {1: ("cat", ALL)}})
    predictions = tmp_path / "predictions"
    for gt in (raw / "train" / "Annotations" / "v").glob("*.png"):
        write_mask(predictions / "v" / gt.name, read_mask(gt))
    write_mask(predictions / "v" / "00002.png", read_mask(raw / "train" / "Annotations" / "v" / "00000.png"))
    shutil.copy(
        raw / "train" / "JPEGImages" / "v" / "00000.jpg", raw / "train" / "JPEGImages" / "v" / "00002.jpg"
    )
    assert VideoFiles.of("youtube", raw, predictions, "v").names() == [f"{5 * t:05d}" for t in ALL]
    assert "00002" in VideoFiles.of("davis", raw, predictions, "v").names()  # DAVIS: every predicted frame


# ------------------------------------------------------------------------------ the whole pipeline


def run_stages(params: Path, names: list[str]) -> None:
    """The stages in one process, as `dvc repro` runs them one `python -m stages.x` after another."""
    from rvos.pipeline import download, format_submission, index, infer, metrics, report, split, train
    from rvos.pipeline.runner import execute_stage

    bodies = {
        "download": download.download_stage,
        "split": split.split_stage,
        "index": index.index_stage,
        "train": train.train_stage,
        "infer": infer.infer_stage,
        "format-submission": format_submission.format_submission_stage,
        "metrics": metrics.metrics_stage,
        "report": report.report_stage,
    }
    for name in names:
        execute_stage(name, bodies[name], str(params))


@pytest.mark.timeout(600)  # about 15 s on a loaded 2-core CPU: tiny videos, one epoch
def test_youtube_source_runs_train_to_report(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    seed, fraction = TINY_TRAINING["seed"], 0.6
    names = [f"vid-{i}" for i in range(8)]
    _, test = hold_out(names, fraction, seed, "")  # the split stage's choice: 5 test videos, 3 to train
    # every object 2 has its own category, so the test videos' are unseen and the cats seen; it
    # enters late and leaves again, in the training and validation videos too (the per-epoch
    # validation scores late objects with the proxy: the DAVIS protocol would refuse them)
    videos = {name: {1: ("cat", ALL), 2: (f"animal-{i}", [1, 2])} for i, name in enumerate(names)}
    videos[test[1]][2] = (videos[test[1]][2][0], LAST)  # ranked by its first object alone
    videos[test[0]] = {1: ("cat", LAST), 2: ("animal-0", LAST)}  # no scored object: not ranked
    folder = make_youtube_vos(tmp_path / "youtube-vos", videos)
    values = {
        **TINY_TRAINING,
        "data": {"source": "youtubevos", "youtubevos": {"path": str(folder)}},
        "split": {"youtube_test_fraction": fraction},
        "train": {**TINY_TRAINING["train"], "epochs": 1},
        "metrics": {"workers": 1},
    }
    params = write_params(project / "params.yaml", values)
    stages = ["download", "split", "index", "train", "infer", "format-submission", "metrics", "report"]
    run_stages(params, stages)

    assert (project / "data" / "splits" / "test.txt").read_text().split() == test
    with (project / "reports" / "train" / "curves.csv").open() as f:
        (epoch,) = csv.DictReader(f)
    assert 0.0 <= float(epoch["val_jf"]) <= 1.0  # the validation video's late object was scored
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"Overall", "J_seen", "J_unseen", "F_seen", "F_unseen"}
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
    rows = per_sequence(project)
    assert [row["sequence"] for row in rows] == test[1:]
    assert [int(row["objects"]) for row in rows] == [1, 2, 2, 2]
    picks = check_gallery(project, rows, tmp_path / "expected")
    check_report(project, picks)
    # the YouTube-VOS server's layout: Annotations/<video>/<frame>.png, the frames meta.json lists
    with zipfile.ZipFile(project / "outputs" / "submission.zip") as archive:
        listed = sorted(archive.namelist())
        first = archive.read(f"Annotations/{test[2]}/00000.png")
    expected = [f"Annotations/{test[0]}/00020.png"]
    expected += [f"Annotations/{video}/{5 * t:05d}.png" for video in test[1:] for t in ALL]
    assert listed == sorted(expected)
    assert decode_mask(first, "zip entry").shape == (48, 80)  # the video's own size, not the index's
