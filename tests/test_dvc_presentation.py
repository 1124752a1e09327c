"""What `dvc exp show` and `dvc plots show` make of the project's dvc.yaml (issue #16).

Training takes minutes, so the `train` and `metrics` stages keep their real declarations (outs,
metrics, plots) and the real top-level `metrics:` / `plots:`, but their command writes outputs of
the committed reports' shape at once (J&F depends on the mode and the learning rate). Then the
README's compact command shows J&F, J, F of both modes in 100 columns.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# The compact command of the README ("Comparing experiments"), without `dvc exp show`.
COMPACT = [
    "--only-changed",
    "--sort-by",
    "J_and_F",
    "--drop",
    r"Created|.*/|params\.yaml|.*-Recall|.*-Decay|.*-bootstrap-std|baselines|test_sequences|best_|final_",
]

WRITER = """
import json, sys
from pathlib import Path
import yaml

params = yaml.safe_load(open("params.yaml"))
score = (0.5 if params["mode"] == "zero_shot" else 0.6) + params["train"]["lr"]
stage = sys.argv[1]
Path("reports/train").mkdir(parents=True, exist_ok=True)
if stage == "train":
    Path("models").mkdir(exist_ok=True)
    Path("models/rvos.pt").write_text(str(score))
    summary = {"best_epoch": 1, "best_val_jf": score, "best_val_loss": 1 - score, "final_val_jf": score}
    Path("reports/train/summary.json").write_text(json.dumps(summary))
    rows = ["epoch,train_loss,val_loss,val_iou,val_jf,val_j,val_f,clips_per_s,teacher_forcing,lr"]
    rows += [f"{e},{2 / e},{2 / e},{score},{score},{score},{score},1.0,1,0.001" for e in (1, 2, 3)]
    Path("reports/train/curves.csv").write_text("\\n".join(rows) + "\\n")
else:
    Path("reports/evaluation").mkdir(exist_ok=True)
    Path("reports/gallery").mkdir(exist_ok=True)
    Path("reports/gallery/worst-1.png").write_bytes(b"png")
    Path("reports/evaluation/global_results-val.csv").write_text("J&F-Mean\\n0\\n")
    Path("reports/per_sequence.csv").write_text(f"sequence,J&F,J,F,objects\\nval-0,{score},{score},{score},1\\n")
    metrics = {"J_and_F": score, "J": score - 0.01, "F": score + 0.01}
    for key in ("J-Recall", "J-Decay", "F-Recall", "F-Decay", "J_and_F-bootstrap-std"):
        metrics[key] = score
    metrics["test_sequences"] = 1
    baseline = {"J_and_F": 0.1, "J": 0.1, "F": 0.1}
    metrics["baselines"] = {"copy_first_frame": baseline, "whole_frame": baseline}
    Path("reports/metrics.json").write_text(json.dumps(metrics))
"""


def sh(repo: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "COLUMNS": "100"}
    result = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def fake_project(repo: Path) -> None:
    real = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    stages = {}
    for name in ("train", "metrics"):
        stage = {k: v for k, v in real["stages"][name].items() if k in ("outs", "metrics", "plots")}
        stage.update(cmd=f"python writer.py {name}", deps=["writer.py"], params=["mode", "train.lr"])
        stages[name] = stage
    stages["metrics"]["deps"].append("models/rvos.pt")
    config = {"stages": stages, "metrics": real["metrics"], "plots": real["plots"]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (repo / "writer.py").write_text(WRITER)
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")


def test_exp_show_and_plots_show(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    fake_project(repo)
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=CI", "-c", "user.email=ci@example.com", "commit", "-qm", "base")
    sh(repo, "dvc", "exp", "run", "-n", "zs", "-S", "mode=zero_shot")
    sh(repo, "git", "checkout", "--", ".")
    sh(repo, "dvc", "exp", "run", "-n", "lr", "-S", "train.lr=0.005")

    # the headline columns come first and fit in 100 columns for both modes
    table = sh(repo, "dvc", "exp", "show", "--no-pager", *COMPACT)
    lines = table.splitlines()
    header = next(line for line in lines if "Experiment" in line)
    assert header.split()[:4] == ["Experiment", "J_and_F", "J", "F"], table
    assert "mode" in header and all(len(line) <= 100 for line in lines), table
    rows = {name: next(line for line in lines if f"[{name}]" in line).split() for name in ("zs", "lr")}
    assert rows["zs"][3:6] == ["0.501", "0.491", "0.511"] and "zero_shot" in rows["zs"], table
    assert rows["lr"][3:6] == ["0.605", "0.595", "0.615"] and "one_shot" in rows["lr"], table
    # the plain command, too, starts with J&F (the rest of a 100-column terminal goes to changed deps)
    plain = sh(repo, "dvc", "exp", "show", "--no-pager", "--only-changed").splitlines()
    assert next(line for line in plain if "Experiment" in line).split()[2] == "J_and_F", plain

    # the four curves of dvc.yaml and no others (the gallery is images), every axis named
    shown = json.loads(sh(repo, "dvc", "plots", "show", "--json"))["data"]
    plots = {name: entries for name, entries in shown.items() if entries[0]["type"] == "vega"}
    assert sorted(plots) == sorted(
        ["reports/train/curves.csv", "val J&F", "val IoU", "reports/per_sequence.csv"]
    )
    for name, (plot,) in plots.items():
        titles = axis_titles(plot["content"], [])
        assert {axis for axis, _ in titles} == {"x", "y"}, (name, titles)
        assert not {title for _, title in titles} & {None, "", "x", "y"}, (name, titles)


def axis_titles(node: object, found: list) -> list:
    """(axis, title) of every x / y encoding in a Vega-Lite spec, layers included."""
    if isinstance(node, dict):
        encoding = node.get("encoding", {})
        found += [(axis, encoding[axis].get("title")) for axis in ("x", "y") if axis in encoding]
        for value in node.values():
            axis_titles(value, found)
    elif isinstance(node, list):
        for value in node:
            axis_titles(value, found)
    return found
