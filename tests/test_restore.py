"""A failed run loses nothing: `rvos restore` brings back the outputs dvc.lock records.

Through the real dvc.yaml on tiny params in a temporary git repository (like tests/test_e2e.py): a
good `dvc repro`, then a stage that fails (a param that breaks `train` at run time, a bug in the
metrics code), whose outputs DVC deletes before running it, then the one command. The good run's
results are committed, as this project commits its reports: DVC's run-cache keeps no copy of a plain
`cache: false` output (the train reports, the evaluation folder), so those come back from git.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_e2e import BIN, ROOT, TINY, deep_update

FAIL_TRAIN = ["model.pretrained=imagenet", "model.weights_path=missing-imagenet.pth"]
RESULTS = ("data", "models", "outputs", "reports")


def results(repo: Path) -> dict[str, bytes]:
    """Every output file of the pipeline (and nothing DVC or git keeps for itself)."""
    files = {}
    for top in RESULTS:
        for path in sorted((repo / top).rglob("*")):
            if path.is_file() and path.name != ".gitignore":
                files[str(path.relative_to(repo))] = path.read_bytes()
    return files


def run(repo: Path, *args: str, ok: bool = True) -> str:
    """A command in the repo, MLflow off (conftest), the venv's dvc and python first on PATH."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert (result.returncode == 0) == ok, (
        f"{' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


def fails(repo: Path, *args: str) -> str:
    return run(repo, *args, ok=False)


def restore(repo: Path) -> str:
    return run(repo, str(BIN / "python"), "-m", "rvos.cli", "restore")


def set_params(repo: Path, changes: list[str]) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for change in changes:
        key, value = change.split("=", 1)
        *parents, last = key.split(".")
        section = params
        for name in parents:
            section = section[name]
        section[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def back_to_good_params(repo: Path, params: str, good: dict[str, bytes]) -> None:
    """Revert params.yaml: only check-params runs again (it had accepted the edit), nothing else."""
    (repo / "params.yaml").write_text(params)
    out = run(repo, "dvc", "repro")
    assert "Running stage 'check-params'" in out and out.count("Running stage") == 1, out
    assert results(repo) == good


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("restore") / "project"
    repo.mkdir()
    for name in ("rvos", "stages"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".gitignore", ".dvcignore", "pyproject.toml"):
        shutil.copy(ROOT / name, repo / name)
    params = deep_update(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    params["data"]["synthetic"]["val_videos"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "ci@example.com"],
        ["git", "config", "user.name", "CI"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "cache.type", "hardlink,symlink"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "tiny pipeline"],
    ):
        run(repo, *command)
    run(repo, "dvc", "repro")  # the good run
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "good results")
    return repo


@pytest.mark.slow
def test_failed_stages_are_restored_by_one_command(repo):
    good = results(repo)
    assert {"models/rvos.pt", "reports/train/curves.csv", "reports/metrics.json"} <= set(good)
    assert any(name.startswith("reports/evaluation/") for name in good)

    # 1. train fails at run time (valid params, but the weights file is missing): DVC had deleted
    #    the model and the cache: false curves and summary before the command ran
    params = (repo / "params.yaml").read_text()
    set_params(repo, FAIL_TRAIN)
    assert "missing-imagenet.pth" in fails(repo, "dvc", "repro")
    gone = ["models/rvos.pt", "reports/train/curves.csv", "reports/train/summary.json"]
    assert not any((repo / name).exists() for name in gone)
    restore(repo)
    assert results(repo) == good
    back_to_good_params(repo, params, good)

    # 2. a bug in the metrics code: its metrics, plot and evaluation folder (all cache: false)
    metrics_code = repo / "rvos" / "pipeline" / "metrics.py"
    code = metrics_code.read_text()
    metrics_code.write_text(code + "\nraise RuntimeError('a bug')\n")
    assert "a bug" in fails(repo, "dvc", "repro")
    assert not (repo / "reports" / "metrics.json").exists()
    assert not (repo / "reports" / "evaluation").exists()
    assert "restored reports/evaluation" in restore(repo)
    assert results(repo) == good
    metrics_code.write_text(code)
    assert "Data and pipelines are up to date" in run(repo, "dvc", "status")


@pytest.mark.slow
def test_failed_experiments_leave_or_get_back_the_workspace_results(repo):
    good = results(repo)
    params = (repo / "params.yaml").read_text()
    # --temp (and queued) experiments run in a copy: the workspace is never touched
    fails(repo, "dvc", "exp", "run", "--temp", *[f"-S{c}" for c in FAIL_TRAIN])
    assert results(repo) == good and (repo / "params.yaml").read_text() == params
    # a workspace experiment deletes the outputs of the stage it fails in, like dvc repro
    fails(repo, "dvc", "exp", "run", *[f"-S{c}" for c in FAIL_TRAIN])
    assert not (repo / "models" / "rvos.pt").exists()
    restore(repo)
    assert results(repo) == good
    back_to_good_params(repo, params, good)  # the experiment's params stay until you revert them
