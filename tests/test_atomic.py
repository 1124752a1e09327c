"""Temporaries of killed runs: the next run of the stage removes its own, never a live run's."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rvos.atomic import atomic_dir, atomic_file
from tests.factories import TINY_TRAINING, prepare_project

ROOT = Path(__file__).resolve().parents[1]
HOLD = """
import sys
from rvos.atomic import atomic_dir, atomic_file
kind, final = sys.argv[1], sys.argv[2]
with (atomic_dir(final) if kind == "dir" else atomic_file(final)) as tmp:
    print(tmp if kind == "dir" else tmp.name, flush=True)
    sys.stdin.read()  # holds the temporary until the test kills it
"""


def stage(name: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # RVOS_TRACKING=0 comes from conftest
    command = [sys.executable, "-m", f"stages.{name}"]
    return subprocess.Popen(command, cwd=cwd, env=env, text=True, **kwargs)


def temps(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f".{name}.tmp-*"))


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def kill_while_writing(process: subprocess.Popen, folder: Path, name: str) -> Path:
    """SIGKILL `process` as soon as its temporary of `folder/name` holds a file (mid-way)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = temps(folder, name)
        if found and any(found[0].iterdir()):
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            return found[0]
        assert process.poll() is None, "the stage ended before its temporary was seen"
        time.sleep(0.002)
    raise AssertionError("no temporary appeared")


def test_killed_infer_leaves_a_temp_that_the_next_run_removes(tmp_path, monkeypatch):
    import torch

    from rvos.config import config_from_dict
    from rvos.model.checkpoint import save_model
    from rvos.model.rvos import RVOS, ModelSpec
    from rvos.pipeline.infer import infer_stage
    from rvos.pipeline.tracking import StageRun

    monkeypatch.chdir(tmp_path)
    values = {**TINY_TRAINING, "mode": "zero_shot"}
    prepare_project(tmp_path, values, train=2, val=4, frames=12)
    config = config_from_dict(values)
    torch.manual_seed(0)
    model = RVOS(ModelSpec.from_config(config.model, config.mode))
    save_model(tmp_path / "models" / "rvos.pt", model, (32, 48), config.mode)
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    outputs = tmp_path / "outputs"

    infer_stage(config, StageRun())  # the last good output, in this process (no start-up to wait for)
    good = files_of(outputs / "predictions")
    assert len(good) == 4 * 12  # every frame of the 4 test videos

    stale = kill_while_writing(stage("infer", tmp_path), outputs, "predictions")
    assert stale.is_dir() and files_of(outputs / "predictions") == good  # the last output is intact
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0 and ".predictions.tmp-" not in status.stdout, status.stdout

    rerun = stage("infer", tmp_path, stderr=subprocess.PIPE)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"removing {stale.relative_to(tmp_path)}, left behind by a killed run" in err
    assert not stale.exists() and temps(outputs, "predictions") == []
    assert files_of(outputs / "predictions") == good


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_a_temp_held_by_a_live_process_is_kept(tmp_path, kind):
    final = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, kind, str(final)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        held = Path(holder.stdout.readline().decode().strip())
        assert held.exists() and held.name.startswith(".out.tmp-")
        # another write of the same output, while the holder is alive: its temporary stays
        with atomic_dir(final) if kind == "dir" else atomic_file(final) as tmp:
            assert held.exists()
        assert final.exists() and held.exists() and temps(tmp_path, "out") == [held]
        # a sibling that only looks like ours (not tempfile's suffix) is never touched
        other = tmp_path / ".out.tmp-notours"
        other.mkdir()
    finally:
        holder.kill()
        holder.wait(timeout=60)
    # the holder is dead (SIGKILL: no clean-up ran): the next write removes its temporary
    assert held.exists()
    with atomic_dir(final) if kind == "dir" else atomic_file(final) as tmp:
        assert not held.exists()
        assert tmp != held
    assert temps(tmp_path, "out") == [other]


def test_outputs_written_inside_a_temporary_folder_do_not_wait_for_it(tmp_path):
    # e.g. rvos evaluate's reports written into the metrics stage's temporary folder
    with atomic_dir(tmp_path / "out") as tmp:
        with atomic_dir(tmp / "inner") as inner:
            (inner / "a.txt").write_text("a")
        with atomic_file(tmp / "b.txt", "w") as handle:
            handle.write("b")
    assert (tmp_path / "out" / "inner" / "a.txt").read_text() == "a"
    assert (tmp_path / "out" / "b.txt").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
