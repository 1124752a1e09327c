"""A real `mlflow server` on 127.0.0.1 over the store that tiny pipeline runs write (issue #16).

One-shot is tracked as `dvc repro` tracks it (no `MLFLOW_TRACKING_URI`: the default store at the
project root), zero-shot as `dvc exp run` would with a team server (`DVC_EXP_NAME`, logging through
the server). Then the project is moved and served again from its new place: the parent runs still
have their params, the headline metric under the key of reports/metrics.json, and their artifacts,
and MLflow's compare view of them is what the README's picture shows (tests/mlflow_compare.py; the
screenshot is kept as tests/artifacts/mlflow-compare.png).
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.browser import ARTIFACTS
from tests.factories import TINY_TRAINING, prepare_project, write_params
from tests.mlflow_compare import compare_view
from tests.mlflow_server import mlflow_server


def run_stages(params: Path) -> None:
    """train, infer, metrics: what `dvc repro` runs after the data stages (`python -m stages.x` in
    one process, so that the test does not pay three torch and MLflow imports per mode)."""
    from rvos.pipeline.infer import infer_stage
    from rvos.pipeline.metrics import metrics_stage
    from rvos.pipeline.runner import execute_stage
    from rvos.pipeline.train import train_stage

    for name, body in (("train", train_stage), ("infer", infer_stage), ("metrics", metrics_stage)):
        execute_stage(name, body, str(params))


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two tiny trainings and two server starts; minutes on a loaded 2-core CPU
def test_parent_runs_of_both_modes_survive_a_moved_store(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    values = {**TINY_TRAINING, "train": {**TINY_TRAINING["train"], "epochs": 1}, "metrics": {"workers": 1}}
    prepare_project(project, values, train=4, val=2, frames=6)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=project, check=True)
    git_identity = ["-c", "user.name=CI", "-c", "user.email=ci@example.com"]
    subprocess.run(["git", *git_identity, "commit", "-qm", "tiny"], cwd=project, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()

    monkeypatch.setenv("RVOS_TRACKING", "1")
    headline = {}
    run_stages(project / "params.yaml")  # one-shot, the default store
    headline["one_shot"] = json.loads((project / "reports" / "metrics.json").read_text())
    log = tmp_path / "server.log"
    with mlflow_server(project / "mlflow.db", log) as url:
        write_params(project / "params.yaml", {**values, "mode": "zero_shot"})
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("DVC_EXP_NAME", "zs")
        run_stages(project / "params.yaml")
    headline["zero_shot"] = json.loads((project / "reports" / "metrics.json").read_text())

    monkeypatch.chdir(tmp_path)
    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    shutil.move(project, moved)
    with mlflow_server(moved / "mlflow.db", log) as url:
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("rvos")
        assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # runs, not traces
        runs = client.search_runs([experiment.experiment_id])
        parents = {r.data.tags["mode"]: r for r in runs if r.data.tags.get("dvc.role") == "parent"}
        assert parents["one_shot"].info.run_name == f"one_shot · repro-{commit[:7]}"
        assert parents["zero_shot"].info.run_name == "zero_shot · zs"
        for mode, parent in parents.items():
            assert parent.info.status == "FINISHED", mode
            assert parent.info.artifact_uri.startswith("mlflow-artifacts:/"), parent.info.artifact_uri
            assert parent.data.params["mode"] == mode and parent.data.params["train.epochs"] == "1"
            # the key users type in `dvc exp show --keep` is the key of the MLflow metric
            for key in ("J_and_F", "J", "F"):
                assert parent.data.metrics[key] == headline[mode][key], (mode, key)
            listed = {a.path for a in client.list_artifacts(parent.info.run_id)}
            assert {"metrics.json", "per_sequence.csv", "train"} <= listed, (mode, listed)
            local = Path(client.download_artifacts(parent.info.run_id, "metrics.json", str(tmp_path / mode)))
            assert json.loads(local.read_text()) == headline[mode]
        children = [r for r in runs if r.data.tags.get("dvc.role") != "parent"]
        assert {r.info.run_name for r in children} == {
            f"{stage} · {mode}" for stage in ("train", "infer", "metrics") for mode in parents
        }

        # the README's picture (`python -m tests.browser mlflow-compare`), from the moved store
        page = compare_view(url, ARTIFACTS / "mlflow-compare.png", str(moved / "mlflow.db"))
    assert page.run_names == [parents["one_shot"].info.run_name, parents["zero_shot"].info.run_name]
    for name in page.run_names:
        assert name in page.text, name
    assert page.default_axes == ["mode", "F"]  # what the README says MLflow plots unless told
    assert page.plot_axes == ["mode", "J", "F", "J_and_F"]
    assert "J_and_F" in page.text.split("Metrics\n", 1)[1]  # a row of the metrics table
    with Image.open(page.screenshot) as picture:
        assert picture.format == "PNG" and picture.width == 1400 and 900 <= picture.height <= 2400
