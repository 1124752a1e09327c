"""Load: four queued experiments (both modes, two seeds) run by two DVC queue workers at once.

The workers are separate processes in separate temporary copies of the repository, writing the
same MLflow sqlite store at the parent's root: what must hold is that every experiment succeeds,
`dvc exp show` lists each with its J_and_F, and every MLflow run is complete.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import make_davis, write_params
from tests.test_e2e import ROOT, make_tiny_repo, sh, start_queue, wait_for_queue

EXPERIMENTS = {
    f"{mode.replace('_', '-')}-seed{seed}": (mode, seed)
    for mode in ("one_shot", "zero_shot")
    for seed in (1, 2)
}
# Tracked stages (`dvc.stage` tag) whose params differ between any two of the experiments:
# they run in every one of them.
# The others (download, split, index) may be restored from DVC's run-cache when the experiment
# with the other mode and the same seed finished first; a restored stage runs no code.
ALWAYS_RUN = {"train", "infer", "metrics"}  # check-params logs no run


def experiments_shown(repo: Path) -> dict[str, dict]:
    """Name -> `data` of every experiment in `dvc exp show --json`."""
    found = {}
    for baseline in json.loads(sh(repo, "dvc", "exp", "show", "--json")):
        for experiment in baseline.get("experiments") or []:
            for rev in experiment["revs"]:
                found[rev["name"]] = rev
    return found


def test_stages_of_concurrent_experiments_share_a_new_store(tmp_path):
    # Four stages that start at once, as queue workers do, on a store that does not exist yet: the
    # first to open it creates and migrates the sqlite database; the others must wait for that
    # (they used to run the same migration at once: "duplicate column name: step").
    store = tmp_path / "root"
    store.mkdir()
    workers = []
    for k in range(4):
        workspace = tmp_path / f"exp-{k}"
        make_davis(workspace / "data" / "raw", train=2, val=1, frames=3, size=(16, 24), objects=1)
        write_params(workspace / "params.yaml", {"seed": k})
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DVC_ROOT": str(store), "DVC_EXP_NAME": f"exp-{k}"}
        env.pop("RVOS_TRACKING")
        command = [sys.executable, "-m", "stages.split"]
        workers.append(subprocess.Popen(command, cwd=workspace, env=env, stderr=subprocess.PIPE, text=True))
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr[-3000:]

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("rvos").experiment_id])
    assert sorted(r.data.tags["dvc.run_key"] for r in runs) == sorted(2 * [f"exp-{k}" for k in range(4)])
    assert all(r.info.status == "FINISHED" for r in runs)
    children = [r for r in runs if r.data.tags.get("dvc.stage") == "split"]
    assert len(children) == 4 and all(r.data.metrics["videos_test"] == 1 for r in children)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the project default (900 s) is for one pipeline run
def test_four_queued_experiments_with_two_workers(tmp_path):
    repo = make_tiny_repo(tmp_path / "project")
    for name, (mode, seed) in EXPERIMENTS.items():
        sh(repo, "dvc", "exp", "run", "--queue", "-n", name, "-S", f"mode={mode}", "-S", f"seed={seed}")
    start_queue(repo, 2)
    status = wait_for_queue(repo, timeout=1800)
    assert status.count("Success") == len(EXPERIMENTS), status
    assert "Failed" not in status, status

    shown = experiments_shown(repo)
    assert set(EXPERIMENTS) <= set(shown), sorted(shown)
    for name, (mode, seed) in EXPERIMENTS.items():
        data = shown[name]["data"]
        params = data["params"]["params.yaml"]["data"]
        assert (params["mode"], params["seed"]) == (mode, seed), name
        metrics = data["metrics"]["reports/metrics.json"]["data"]
        assert 0.0 <= metrics["J_and_F"] <= 1.0, (name, metrics)

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rvos")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    parents = [r for r in runs if r.data.tags.get("dvc.role") == "parent"]
    by_name = {r.data.tags["dvc.run_key"]: r for r in parents}
    assert len(parents) == len(EXPERIMENTS) and set(by_name) == set(EXPERIMENTS), sorted(by_name)
    for run in runs:
        assert run.info.status == "FINISHED", (run.info.run_name, run.data.tags.get("dvc.run_key"))
    for name, (mode, seed) in EXPERIMENTS.items():
        parent = by_name[name]
        assert parent.data.tags["mode"] == mode and parent.data.params["seed"] == str(seed), name
        assert {"J_and_F", "J", "F"} <= set(parent.data.metrics), (name, parent.data.metrics)
        # The headline number on the parent is the one DVC shows for the experiment.
        shown_jf = shown[name]["data"]["metrics"]["reports/metrics.json"]["data"]["J_and_F"]
        assert parent.data.metrics["J_and_F"] == pytest.approx(shown_jf), name
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        stages = [r.data.tags["dvc.stage"] for r in children]
        assert len(stages) == len(set(stages)), (name, stages)  # one child per stage, none twice
        assert set(stages) >= ALWAYS_RUN, (name, stages)
        assert all(r.data.tags["dvc.run_key"] == name for r in children), name
