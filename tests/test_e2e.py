"""End to end: the real dvc.yaml on tiny params in a temporary git repository.

Covers `dvc repro` (twice: the second is a no-op), `dvc exp run -S mode=zero_shot`, queued
experiments run by two workers, the MLflow runs of all of them, and push / clone / pull through a
local remote after which `dvc repro` has nothing to do.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

TINY = {
    "data": {
        "synthetic": {
            "train_videos": 4,
            "val_videos": 2,
            "min_frames": 6,
            "max_frames": 8,
            "height": 64,
            "width": 96,
            "max_objects": 2,
        }
    },
    "split": {"valid_fraction": 0.25},
    "index": {"height": 32, "width": 48},
    "model": {"hidden_size": 16, "max_objects": 2},
    "train": {"epochs": 1, "batch_size": 2, "clip_len": 3, "teacher_forcing_epochs": 1},
    "metrics": {"workers": 1},
    "runtime": {"threads": 1},
}


def deep_update(base: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def sh(repo: Path, *args: str, timeout: int = 600) -> str:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("RVOS_TRACKING", None)  # the real thing: MLflow on
    result = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


def make_tiny_repo(repo: Path) -> Path:
    """`repo`: rvos/, stages/, dvc.yaml and the TINY params in a fresh git + DVC repository, committed."""
    repo.mkdir(parents=True)
    for name in ("rvos", "stages"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".gitignore", ".dvcignore", "pyproject.toml"):
        shutil.copy(ROOT / name, repo / name)
    params = deep_update(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "config", "user.email", "ci@example.com")
    sh(repo, "git", "config", "user.name", "CI")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "config", "cache.type", "hardlink,symlink")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "tiny pipeline")
    return repo


def start_queue(repo: Path, jobs: int) -> None:
    """`dvc queue start -j <jobs>`. Its workers are daemons that inherit stdout and stderr, so the
    command's output goes to a file: on a pipe, reading it to the end would wait for the workers."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("RVOS_TRACKING", None)
    with (repo / ".dvc" / "tmp" / "queue-start.log").open("w") as log_file:
        command = ["dvc", "queue", "start", "-j", str(jobs)]
        code = subprocess.run(command, cwd=repo, env=env, stdout=log_file, stderr=log_file, timeout=120)
    assert code.returncode == 0, (repo / ".dvc" / "tmp" / "queue-start.log").read_text()


def wait_for_queue(repo: Path, timeout: float = 900) -> str:
    """Poll `dvc queue status` until nothing is queued or running; its last output."""
    deadline = time.time() + timeout
    while True:
        status = sh(repo, "dvc", "queue", "status")
        if "Queued" not in status and "Running" not in status:
            return status
        assert time.time() < deadline, status
        time.sleep(3)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_tiny_repo(tmp_path_factory.mktemp("e2e") / "project")


def test_stages_import_the_rvos_next_to_dvc_yaml():
    # `python stages/x.py` puts stages/ first on sys.path, and `import rvos` then finds the editable
    # install, i.e. the workspace's code: a queued experiment would run whatever the workspace holds
    # when its stage starts instead of the code it was queued with.
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert stage["cmd"] == f"python -m stages.{name.replace('-', '_')}", name


def metrics_of(repo: Path) -> dict:
    return json.loads((repo / "reports" / "metrics.json").read_text())


@pytest.mark.slow
def test_pipeline_experiments_tracking_and_remote(repo, tmp_path):
    # 1. the whole pipeline, then nothing to do
    sh(repo, "dvc", "repro")
    for output in (
        "data/raw/ImageSets/2017/val.txt",
        "data/splits/test.txt",
        "data/lmdb/data.mdb",
        "models/rvos.pt",
        "outputs/submission.zip",
        "reports/per_sequence.csv",
    ):
        assert (repo / output).exists(), output
    one_shot = metrics_of(repo)
    assert 0.0 <= one_shot["J_and_F"] <= 1.0 and "copy_first_frame" in one_shot["baselines"]
    assert "Data and pipelines are up to date" in sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "pipeline results")

    # 2. an experiment in the workspace: only train and later stages run again
    out = sh(repo, "dvc", "exp", "run", "-n", "zs", "-S", "mode=zero_shot")
    assert "Stage 'index' didn't change" in out or "'index' is cached" in out
    assert metrics_of(repo)["J_and_F"] >= 0.0
    diff = sh(repo, "dvc", "metrics", "diff", "main", "--json")
    assert "reports/metrics.json" in json.loads(diff)
    sh(repo, "git", "checkout", "--", ".")
    sh(repo, "dvc", "checkout", "--force")

    # 3. two queued experiments with two workers
    sh(repo, "dvc", "exp", "run", "--queue", "-n", "q-lr", "-S", "train.lr=0.002")
    sh(repo, "dvc", "exp", "run", "--queue", "-n", "q-seed", "-S", "seed=5")
    start_queue(repo, 2)
    status = wait_for_queue(repo)
    assert status.count("Success") >= 2, status
    shown = json.loads(sh(repo, "dvc", "exp", "show", "--json"))
    names = json.dumps(shown)
    for name in ("zs", "q-lr", "q-seed"):
        assert name in names

    # 4. MLflow: one finished parent per run, children per stage, final metrics on the parent
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rvos")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    parents = {r.data.tags["dvc.run_key"]: r for r in runs if r.data.tags.get("dvc.role") == "parent"}
    assert {"zs", "q-lr", "q-seed"} <= set(parents)
    assert any(name.startswith("repro-") for name in parents)
    assert parents["zs"].info.run_name == "zero_shot · zs" and parents["zs"].data.tags["dvc.exp_name"] == "zs"
    assert parents["q-lr"].info.run_name == "one_shot · q-lr"
    for name, parent in parents.items():
        assert parent.info.status == "FINISHED", name
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        stages = {r.data.tags["dvc.stage"] for r in children}
        assert "train" in stages, (name, stages)  # its params changed, so train really ran
        assert all(r.info.status == "FINISHED" for r in children), name
        # A stage that DVC restores from its run-cache runs no code and logs nothing (same inputs,
        # same outputs); when the metrics stage did run, its numbers are on the parent.
        if "metrics" in stages:
            assert "J_and_F" in parent.data.metrics, name
    assert "J_and_F" in parents["zs"].data.metrics
    assert parents["zs"].data.tags["mode"] == "zero_shot"
    assert parents["q-lr"].data.params["train.lr"] == "0.002"
    # artifacts: proxied URIs resolved against <root>/mlartifacts, so the store can move
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:/rvos/") for r in runs)
    zs_artifacts = parents["zs"].info.artifact_uri.removeprefix("mlflow-artifacts:/")
    assert (repo / "mlartifacts" / zs_artifacts / "metrics.json").is_file()

    # the README's compact `dvc exp show` keeps J&F of both modes in 100 columns
    from tests.test_dvc_presentation import COMPACT

    table = sh(repo, "env", "COLUMNS=100", "dvc", "exp", "show", "--no-pager", *COMPACT)
    assert "J_and_F" in table and all(len(line) <= 100 for line in table.splitlines()), table
    header = next(line for line in table.splitlines() if "Experiment" in line).split()
    zs_row = next(line for line in table.splitlines() if "[zs]" in line).split()
    # the tree prefix ("└──", the rev) adds cells before the name; count the columns from the right
    jf_cell = zs_row[header.index("J_and_F") - len(header) :][0]
    assert jf_cell.replace(".", "", 1).isdigit() and "zero_shot" in zs_row, table

    # 5. push to a local remote; a fresh clone pulls everything and has nothing to re-run
    remote = tmp_path / "remote"
    sh(repo, "dvc", "remote", "add", "-d", "local", str(remote))
    sh(repo, "git", "commit", "-qam", "remote")
    sh(repo, "dvc", "push")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    sh(clone, "dvc", "pull")
    assert "Data and pipelines are up to date" in sh(clone, "dvc", "status")
    assert "Data and pipelines are up to date" in sh(clone, "dvc", "repro")
    assert metrics_of(clone) == one_shot
