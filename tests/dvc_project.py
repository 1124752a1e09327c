"""A temporary git + DVC repository with the real dvc.yaml and the inputs of the `metrics` stage.

Training takes minutes even on tiny params, so the repository gets what the stages before
`metrics` would have written (a tiny DAVIS folder, its splits, predictions: the ground truth shifted
by a few pixels, more for some videos) and runs the later stages with `dvc repro --single-item`.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from rvos.masks import read_mask, write_mask
from tests.factories import make_davis

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(repo: Path, *args: str, timeout: int = 300, tracking: bool = False) -> subprocess.CompletedProcess:
    """Run a command in `repo`, which must succeed; with `tracking` the stages log to MLflow."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "RVOS_TRACKING": "1" if tracking else "0"}
    result = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def sh(repo: Path, *args: str, timeout: int = 300, tracking: bool = False) -> str:
    """stdout and stderr of a command that must succeed."""
    result = run(repo, *args, timeout=timeout, tracking=tracking)
    return result.stdout + result.stderr


CURVES = """epoch,train_loss,val_loss,val_iou,val_jf,val_j,val_f,clips_per_s,teacher_forcing,lr
1,2.5,2.1,0.2,0.30,0.28,0.32,1.0,1,0.001
2,1.8,1.9,0.3,0.42,0.40,0.44,1.0,0,0.001
3,1.4,1.7,0.4,0.51,0.50,0.52,1.0,0,0.001
"""


def shifted_predictions(raw: Path, predictions: Path, videos: list[str]) -> None:
    """Ground truth rolled sideways by 1, 3, 5, ... pixels: each video scores differently."""
    for k, video in enumerate(videos):
        for gt in sorted((raw / "Annotations" / "480p" / video).glob("*.png")):
            write_mask(predictions / video / gt.name, np.roll(read_mask(gt), 1 + 2 * k, axis=1))


def make_repo(repo: Path, val: int = 4) -> Path:
    """`repo` with rvos/, stages/, dvc.yaml, tiny params and the metrics stage's inputs, committed."""
    repo.mkdir(parents=True)
    for name in ("rvos", "stages", "plots"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore", "pyproject.toml"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, repo / name)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["source"] = "local"
    params["metrics"]["workers"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    raw = make_davis(repo / "data" / "raw", train=2, val=val, frames=6)
    videos = [f"val-{i}" for i in range(val)]
    splits = repo / "data" / "splits"
    splits.mkdir(parents=True)
    (splits / "test.txt").write_text("".join(f"{v}\n" for v in videos))
    shifted_predictions(raw, repo / "outputs" / "predictions", videos)
    (repo / "reports" / "train").mkdir(parents=True)  # what `train` writes besides the model
    (repo / "reports" / "train" / "curves.csv").write_text(CURVES)
    (repo / "reports" / "train" / "summary.json").write_text('{"best_epoch": 3, "best_val_jf": 0.51}\n')
    # what DVC itself would write: its outputs stay out of git
    (repo / "data" / ".gitignore").write_text("/raw\n/splits\n/lmdb\n/params.schema.json\n")
    (repo / "outputs" / ".gitignore").write_text("/predictions\n/submission.zip\n")
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "config", "user.email", "ci@example.com")
    sh(repo, "git", "config", "user.name", "CI")
    sh(repo, "dvc", "init", "-q")
    if (ROOT / ".dvc" / "config").is_file():  # the project's DVC settings (e.g. the plots template)
        shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "tiny metrics inputs")
    return repo
