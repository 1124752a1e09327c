"""The `metrics` stage: score the pipeline's predictions and the trivial baselines with the same code.

- one_shot  -> DAVIS-2017 semi-supervised protocol; zero_shot -> unsupervised protocol.
- Baselines, scored exactly like the model so the comparison is fair:
  `copy_first_frame` (the first-frame annotation pasted on every frame; it uses ground truth, which a
  zero-shot method never sees) and `whole_frame` (one proposal covering every pixel).
- Outputs: `reports/metrics.json` (J&F, J, F with recall and decay, plus the baselines: what
  `dvc metrics diff` and `dvc exp show` display), `reports/per_sequence.csv` (plotted as a bar
  chart), and `reports/evaluation/` with the official CSVs and the full-precision report.
- YouTube-VOS sources get the local proxy (J/F seen/unseen, Overall) on the train-val split.
"""

import json
import logging
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from rvos import paths
from rvos.atomic import atomic_dir, write_text_atomic
from rvos.config import Config
from rvos.data.split import dataset_layout, read_list
from rvos.errors import RvosError
from rvos.masks import read_mask, write_mask
from rvos.metrics.evaluate import evaluate_davis
from rvos.metrics.youtube import evaluate_youtube
from rvos.tracking import StageRun

log = logging.getLogger(__name__)

EVALUATION = paths.REPORTS / "evaluation"
METRICS = paths.REPORTS / "metrics.json"
PER_SEQUENCE = paths.REPORTS / "per_sequence.csv"
DAVIS_TEST_SET = "val"  # the DAVIS-layout test split is ImageSets/2017/val.txt (rvos.data.split)


def task_for(mode: str) -> str:
    return "semi-supervised" if mode == "one_shot" else "unsupervised"


def headline(global_values: dict) -> dict:
    """The official global columns under the short names shown by `dvc exp show`."""
    return {
        "J&F": global_values["J&F-Mean"],
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


def write_baseline(kind: str, gt_root: Path, videos: list[str], out: Path) -> None:
    """Predictions of a trivial method for every frame of `videos`."""
    for video in videos:
        frames = sorted((gt_root / video).glob("*.png"))
        first = read_mask(frames[0])
        first = np.where(first == 255, 0, first).astype(np.uint8)
        mask = first if kind == "copy_first_frame" else np.ones_like(first)
        for frame in frames:
            write_mask(out / video / frame.name, mask)


def davis_metrics(config: Config, workers: int) -> tuple[dict, list[dict], dict]:
    """-> (metrics.json content, per-sequence rows, full report of the model)."""
    task = task_for(config.mode)
    test = read_list(paths.SPLITS / "test.txt")
    listed = read_list(paths.RAW / "ImageSets" / "2017" / f"{DAVIS_TEST_SET}.txt")
    if sorted(test) != sorted(listed):
        raise RvosError(f"{paths.SPLITS / 'test.txt'}: does not match ImageSets/2017/{DAVIS_TEST_SET}.txt")
    with atomic_dir(EVALUATION) as out:
        report = evaluate_davis(paths.RAW, paths.PREDICTIONS, task, DAVIS_TEST_SET, out, workers)
        metrics = {**headline(report["global"]), "baselines": {}}
        gt_root = paths.RAW / "Annotations" / "480p"
        for kind in ("copy_first_frame", "whole_frame"):
            scratch = Path(tempfile.mkdtemp(prefix=f"rvos-{kind}-"))
            try:
                write_baseline(kind, gt_root, test, scratch)
                baseline = evaluate_davis(paths.RAW, scratch, task, DAVIS_TEST_SET, out / kind, workers)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            metrics["baselines"][kind] = {
                k: baseline["global"][c] for k, c in (("J&F", "J&F-Mean"), ("J", "J-Mean"), ("F", "F-Mean"))
            }
    return metrics, per_sequence_rows(report["per_object"]), report


def youtube_metrics(config: Config, workers: int) -> tuple[dict, list[dict], dict]:
    if config.mode != "one_shot":
        raise RvosError(
            "params: mode = zero_shot: YouTube-VOS has no unsupervised protocol; score zero-shot models on "
            "DAVIS-layout data"
        )
    meta = json.loads((paths.SPLITS / "train-val-meta.json").read_text())
    train_meta = json.loads((paths.SPLITS / "train-train-meta.json").read_text())
    seen = {o.get("category", "") for v in train_meta["videos"].values() for o in v["objects"].values()}
    report = evaluate_youtube(paths.RAW / "train" / "Annotations", meta, seen, paths.PREDICTIONS, workers)
    with atomic_dir(EVALUATION) as out:
        (out / "youtube-proxy.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    keys = ("Overall", "J_seen", "J_unseen", "F_seen", "F_unseen")
    metrics = {key: report[key] for key in keys if report.get(key) is not None}
    rows = []
    for label, values in report["per_object"].items():
        j, f = values["J"], values["F"]
        rows.append({"sequence": label, "J&F": (j + f) / 2, "J": j, "F": f, "objects": 1})
    return metrics, rows, report


def write_per_sequence(rows: list[dict]) -> None:
    lines = ["sequence,J&F,J,F,objects"]
    lines += [f"{r['sequence']},{r['J&F']:.6f},{r['J']:.6f},{r['F']:.6f},{r['objects']}" for r in rows]
    write_text_atomic(PER_SEQUENCE, "\n".join(lines) + "\n")


def log_overlays(run: StageRun, videos: list[str], limit: int = 3) -> None:
    """A few prediction overlays (middle frame of the first test videos) as MLflow artifacts."""
    if not run.enabled:
        return
    from rvos.demo import overlay

    with tempfile.TemporaryDirectory() as scratch:
        for video in videos[:limit]:
            predictions = sorted((paths.PREDICTIONS / video).glob("*.png"))
            frame = predictions[len(predictions) // 2]
            image = cv2.imread(str(paths.RAW / "JPEGImages" / "480p" / video / f"{frame.stem}.jpg"))
            if image is None:
                continue
            picture = overlay(image[..., ::-1], read_mask(frame))[..., ::-1]
            target = Path(scratch) / f"{video}_{frame.stem}.jpg"
            cv2.imwrite(str(target), picture)
            run.log_artifact(target, "overlays")


def metrics_stage(config: Config, run: StageRun) -> None:
    """Score outputs/predictions; write reports/metrics.json, per_sequence.csv and evaluation/."""
    workers = config.metrics.workers
    if dataset_layout(config.data.source) == "youtube":
        metrics, rows, _ = youtube_metrics(config, workers)
    else:
        metrics, rows, _ = davis_metrics(config, workers)
    write_text_atomic(METRICS, json.dumps(metrics, indent=2) + "\n")
    write_per_sequence(rows)
    flat = {k: v for k, v in metrics.items() if isinstance(v, float)}
    for name, values in metrics.get("baselines", {}).items():
        flat.update({f"baseline_{name}_{k}": v for k, v in values.items()})
    run.log_metrics(flat, parent=True)
    run.log_artifact(METRICS)
    run.log_artifact(PER_SEQUENCE)
    if dataset_layout(config.data.source) == "davis":
        log_overlays(run, read_list(paths.SPLITS / "test.txt"))
    log.info("metrics: %s", ", ".join(f"{k} {v:.4f}" for k, v in flat.items()))
