"""The `check-params` stage: first in the DAG, refuses bad params, writes a value-independent file."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from rvos.config import Config, config_to_dict, flatten

ROOT = Path(__file__).resolve().parents[1]


def run_check(cwd: Path, params: str) -> subprocess.CompletedProcess:
    (cwd / "params.yaml").write_text(params)
    command = [sys.executable, "-m", "stages.check_params"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def project_copy(tmp_path: Path) -> Path:
    for folder in ("rvos", "stages"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "data").mkdir()
    return tmp_path


def test_output_lists_the_keys_and_does_not_depend_on_values(tmp_path):
    root = project_copy(tmp_path)
    schema = root / "data" / "params.schema.json"
    assert run_check(root, "seed: 1\n").returncode == 0
    first = schema.read_bytes()
    assert json.loads(first)["keys"] == sorted(flatten(config_to_dict(Config())))
    assert run_check(root, "seed: 7\ntrain:\n  epochs: 3\n").returncode == 0
    assert schema.read_bytes() == first  # a valid edit re-runs nothing downstream


def test_bad_params_fail_with_one_line_and_keep_the_output(tmp_path):
    root = project_copy(tmp_path)
    schema = root / "data" / "params.schema.json"
    assert run_check(root, "seed: 1\n").returncode == 0
    before = schema.read_bytes()
    for params, message in [
        ("metrics:\n  workers: 0\n", "params: metrics.workers must be >= 1"),
        ("runtime:\n  threds: 2\n", "unknown key 'runtime.threds'"),
        ("seed: 1\nseed: 2\n", "duplicate key 'seed' on line 2"),
    ]:
        result = run_check(root, params)
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        assert len(errors) == 1 and message in errors[0], result.stderr
        assert "Traceback" not in result.stderr
        assert schema.read_bytes() == before


def test_check_params_runs_before_every_other_stage():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert next(iter(stages)) == "check-params"
    check = stages["check-params"]
    assert "params.yaml" in check["deps"]  # a file dep: any edit, even of `runtime`, re-runs it
    (out,) = check["outs"]
    assert out == {"data/params.schema.json": {"persist": True}}
    assert "data/params.schema.json" in stages["download"]["deps"]  # so DVC orders it first
