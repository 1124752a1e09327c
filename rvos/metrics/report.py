"""What the `metrics` stage reports besides the official CSVs: headline numbers, per-sequence rows,
and trivial baselines scored by exactly the same code as the model, so that the comparison is fair.

- `copy_first_frame`: the first-frame annotation pasted on every frame (it uses ground truth, which a
  zero-shot method never sees);
- `whole_frame`: one proposal covering every pixel.
"""

import shutil
import tempfile
from pathlib import Path

import numpy as np

from rvos.masks import read_mask, write_mask
from rvos.metrics import JF
from rvos.metrics.evaluate import evaluate_davis

BASELINES = ("copy_first_frame", "whole_frame")


def task_for(mode: str) -> str:
    """The DAVIS protocol that scores a mode: one-shot is semi-supervised, zero-shot unsupervised."""
    return "semi-supervised" if mode == "one_shot" else "unsupervised"


def headline(global_values: dict) -> dict:
    """The official global columns under the short names shown by `dvc exp show` and MLflow."""
    return {
        JF: global_values["J&F-Mean"],
        "J": global_values["J-Mean"],
        "F": global_values["F-Mean"],
        "J-Recall": global_values["J-Recall"],
        "J-Decay": global_values["J-Decay"],
        "F-Recall": global_values["F-Recall"],
        "F-Decay": global_values["F-Decay"],
    }


def per_sequence_rows(per_object: dict[str, dict[str, float]]) -> list[dict]:
    """Mean J and F of each sequence's objects (labels are '<sequence>_<k>')."""
    sequences: dict[str, list[dict]] = {}
    for label, values in per_object.items():
        sequences.setdefault(label.rsplit("_", 1)[0], []).append(values)
    rows = []
    for name, objects in sequences.items():
        j = float(np.mean([o["J-Mean"] for o in objects]))
        f = float(np.mean([o["F-Mean"] for o in objects]))
        rows.append({"sequence": name, "J&F": (j + f) / 2, "J": j, "F": f, "objects": len(objects)})
    return rows


def bootstrap_std(per_object: dict[str, dict[str, float]], samples: int = 1000, seed: int = 0) -> float:
    """Standard deviation of J&F over bootstrap resamples of the test sequences.

    Sequences, not objects, are resampled: objects of one video share its difficulty, so resampling
    them independently would understate the noise. The generator is seeded: same input, same number.
    """
    sequences: dict[str, list[tuple[float, float]]] = {}
    for label, values in per_object.items():
        sequences.setdefault(label.rsplit("_", 1)[0], []).append((values["J-Mean"], values["F-Mean"]))
    groups = [np.array(objects) for _, objects in sorted(sequences.items())]  # each (objects, 2)
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(samples):
        picked = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        scores.append(picked.mean(axis=0).mean())  # (mean J + mean F) / 2, as J&F-Mean
    return float(np.std(scores))


def per_sequence_csv(rows: list[dict]) -> str:
    """The rows as CSV text (`reports/per_sequence.csv`, plotted as a bar chart by DVC)."""
    lines = ["sequence,J&F,J,F,objects"]
    lines += [f"{r['sequence']},{r['J&F']:.6f},{r['J']:.6f},{r['F']:.6f},{r['objects']}" for r in rows]
    return "\n".join(lines) + "\n"


def write_baseline(kind: str, gt_root: Path, videos: list[str], out: Path) -> None:
    """Predictions of a trivial method for every frame of `videos`."""
    for video in videos:
        frames = sorted((gt_root / video).glob("*.png"))
        first = read_mask(frames[0])
        first = np.where(first == 255, 0, first).astype(np.uint8)
        mask = first if kind == "copy_first_frame" else np.ones_like(first)
        for frame in frames:
            write_mask(out / video / frame.name, mask)


def score_baselines(
    davis_root: Path, videos: list[str], task: str, image_set: str, out: Path, workers: int
) -> dict[str, dict[str, float]]:
    """Each baseline's J&F, J and F; its official CSVs go to `out/<baseline>/`."""
    gt_root = davis_root / "Annotations" / "480p"
    scores = {}
    for kind in BASELINES:
        scratch = Path(tempfile.mkdtemp(prefix=f"rvos-{kind}-"))
        try:
            write_baseline(kind, gt_root, videos, scratch)
            baseline = evaluate_davis(davis_root, scratch, task, image_set, out / kind, workers)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        scores[kind] = {
            k: baseline["global"][c] for k, c in ((JF, "J&F-Mean"), ("J", "J-Mean"), ("F", "F-Mean"))
        }
    return scores
