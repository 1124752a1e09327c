"""`python -m tests.browser mlflow-compare` on stores it cannot picture (one line, status 2, no
file), and on a store of one mode (its newest two parent runs).

The README's picture is taken from tiny pipeline runs in tests/test_mlflow_server.py (training once).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def compare(tmp_path: Path, store: Path, picture: bool = False) -> subprocess.CompletedProcess:
    """The command; a picture is written if and only if `picture` is expected."""
    out = tmp_path / "picture.png"
    result = subprocess.run(
        [sys.executable, "-m", "tests.browser", "mlflow-compare", "--store", str(store), "--out", str(out)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.is_file() == picture, result.stderr
    if picture:
        out.unlink()
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
@pytest.mark.timeout(900)  # an MLflow store created, served twice, one page: minutes on a loaded 2-core CPU
def test_one_parent_run_is_one_line_and_one_mode_compares_its_newest_two(tmp_path):
    from mlflow import MlflowClient

    store = tmp_path / "mlflow.db"
    client = MlflowClient(f"sqlite:///{store}")
    experiment = client.create_experiment("rvos", artifact_location="mlflow-artifacts:/rvos")

    def parent(name: str, start: int, jf: float) -> str:
        run = client.create_run(experiment, start_time=start, tags={"mode": "one_shot"}, run_name=name)
        for key, value in {"J_and_F": jf, "J": jf + 0.01, "F": jf - 0.01}.items():
            client.log_metric(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id)
        return run.info.run_id

    first = parent("one_shot · repro-aaaaaaa", 1_000, 0.5)
    # a child of it is no second run to compare
    client.create_run(experiment, start_time=2_000, tags={"mode": "one_shot", "mlflow.parentRunId": first})
    line = one_error_line(compare(tmp_path, store))
    assert f"{store}: 1 scored parent run(s) in MLflow experiment 'rvos', the compare view needs two" in line

    parent("one_shot · repro-bbbbbbb", 3_000, 0.6)
    parent("one_shot · repro-ccccccc", 4_000, 0.7)
    # the newest parent is still training (no test score yet): not one to compare
    client.create_run(experiment, start_time=5_000, tags={"mode": "one_shot"}, run_name="one_shot · training")
    result = compare(tmp_path, store, picture=True)
    assert result.returncode == 0, result.stderr
    assert "compare view of one_shot · repro-bbbbbbb, one_shot · repro-ccccccc written to" in result.stderr
