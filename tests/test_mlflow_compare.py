"""`python -m tests.browser mlflow-compare` on stores it cannot picture: one line, status 2, no file.

The picture itself is taken from tiny pipeline runs in tests/test_mlflow_server.py (training once).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def compare(tmp_path: Path, store: Path) -> subprocess.CompletedProcess:
    out = tmp_path / "picture.png"
    result = subprocess.run(
        [sys.executable, "-m", "tests.browser", "mlflow-compare", "--store", str(store), "--out", str(out)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert not out.exists()
    return result


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and " ERROR " in lines[0], result.stderr
    return lines[0]


def test_a_missing_store_is_one_line(tmp_path):
    line = one_error_line(compare(tmp_path, tmp_path / "mlflow.db"))
    assert f"{tmp_path / 'mlflow.db'}: no MLflow store there" in line


def test_a_file_that_is_no_database_is_one_line(tmp_path):
    store = tmp_path / "mlflow.db"
    store.write_text("runs: []\n")
    line = one_error_line(compare(tmp_path, store))
    assert f"{store}: not an SQLite database" in line


@pytest.mark.slow
@pytest.mark.timeout(600)  # an MLflow store created and served once: a minute on a loaded 2-core CPU
def test_a_store_with_one_parent_run_is_one_line(tmp_path):
    from mlflow import MlflowClient

    store = tmp_path / "mlflow.db"
    client = MlflowClient(f"sqlite:///{store}")
    experiment = client.create_experiment("rvos", artifact_location="mlflow-artifacts:/rvos")
    parent = client.create_run(experiment, tags={"mode": "one_shot"}, run_name="one_shot · repro-abc1234")
    # a child of it is no second run to compare
    client.create_run(experiment, tags={"mode": "one_shot", "mlflow.parentRunId": parent.info.run_id})
    line = one_error_line(compare(tmp_path, store))
    assert f"{store}: 1 parent run(s) in MLflow experiment 'rvos', the compare view needs two" in line
