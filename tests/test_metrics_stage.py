"""The metrics stage: model vs baselines with one scorer, the files DVC reads, and protocol choice."""

import json

import numpy as np
import pytest

from rvos import paths
from rvos.config import config_from_dict
from rvos.masks import read_mask, write_mask
from rvos.pipeline.metrics import metrics_stage
from rvos.pipeline.split import split_stage
from rvos.pipeline.tracking import StageRun
from tests.factories import make_davis


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_davis(tmp_path / "data" / "raw", train=3, val=2, frames=6)
    return tmp_path


def predict(kind: str) -> None:
    """Perfect predictions, or ground truth shifted by a few pixels."""
    for video in ("val-0", "val-1"):
        for gt in sorted((paths.RAW / "Annotations" / "480p" / video).glob("*.png")):
            mask = read_mask(gt)
            if kind == "shifted":
                mask = np.roll(mask, 3, axis=1)
            write_mask(paths.PREDICTIONS / video / gt.name, mask)


@pytest.mark.parametrize("mode", ["one_shot", "zero_shot"])
def test_perfect_predictions_score_one_and_beat_the_baselines(project, mode):
    config = config_from_dict({"mode": mode, "data": {"source": "local"}, "metrics": {"workers": 1}})
    split_stage(config, StageRun())
    predict("perfect")
    metrics_stage(config, StageRun())
    metrics = json.loads(paths.REPORTS.joinpath("metrics.json").read_text())
    # J&F under the one key that MLflow accepts too
    assert metrics["J_and_F"] == pytest.approx(1.0) and metrics["J"] == pytest.approx(1.0)
    assert metrics["J_and_F-bootstrap-std"] == pytest.approx(0.0) and metrics["test_sequences"] == 2
    assert set(metrics["baselines"]) == {"copy_first_frame", "whole_frame"}
    # the objects move, so copying the first frame must lose
    assert metrics["baselines"]["copy_first_frame"]["J_and_F"] < 0.9
    assert metrics["baselines"]["whole_frame"]["J"] < 0.3
    rows = paths.REPORTS.joinpath("per_sequence.csv").read_text().splitlines()
    assert rows[0] == "sequence,J&F,J,F,objects"
    assert [r.split(",")[0] for r in rows[1:]] == ["val-0", "val-1"]
    task = "semi-supervised" if mode == "one_shot" else "unsupervised"
    report = json.loads((paths.REPORTS / "evaluation" / "metrics.json").read_text())
    assert report["task"] == task
    assert (paths.REPORTS / "evaluation" / "global_results-val.csv").is_file()


def test_worse_predictions_score_lower(project):
    config = config_from_dict({"data": {"source": "local"}, "metrics": {"workers": 1}})
    split_stage(config, StageRun())
    predict("shifted")
    metrics_stage(config, StageRun())
    metrics = json.loads(paths.REPORTS.joinpath("metrics.json").read_text())
    assert 0.3 < metrics["J_and_F"] < 0.95


def test_bootstrap_std_resamples_sequences():
    from rvos.metrics.report import bootstrap_std

    def objects(scores: dict[str, list[float]]) -> dict:
        return {
            f"{seq}_{k + 1}": {"J-Mean": s, "F-Mean": s}
            for seq, values in scores.items()
            for k, s in enumerate(values)
        }

    assert bootstrap_std(objects({"a": [0.5], "b": [0.5]})) == 0.0
    # two sequences: the resampled mean is a, b or their midpoint -> std |a - b| / (2 sqrt 2)
    two = bootstrap_std(objects({"a": [0.2], "b": [0.8]}), samples=4000)
    assert abs(two - 0.6 / (2 * 2**0.5)) < 0.01
    # a sequence's objects move together: many objects in one video are not many samples
    assert bootstrap_std(objects({"a": [0.2] * 10, "b": [0.8]})) > 0.2
    many = objects({f"s{i}": [0.2 if i % 2 else 0.8] for i in range(64)})
    assert bootstrap_std(many) < two / 4  # more sequences, less noise (~1/sqrt(n))
    assert bootstrap_std(many) == bootstrap_std(many)  # seeded
