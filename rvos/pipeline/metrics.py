"""DVC stage `metrics`: outputs/predictions + data/raw -> reports/metrics.json, per_sequence.csv, evaluation/.

- one_shot -> DAVIS-2017 semi-supervised protocol; zero_shot -> unsupervised protocol; the trivial
  baselines of `rvos.metrics.report` are scored next to the model.
- `reports/metrics.json` (J&F as `J_and_F`, J, F with recall and decay, plus the baselines) is what
  `dvc metrics diff` and `dvc exp show` display; `reports/evaluation/` has the official CSVs.
- YouTube-VOS sources get the local proxy (J/F seen/unseen, Overall) on the train-val split; their
  per-sequence rows are per video (mean over its scored objects).
- `reports/gallery/`: frame | prediction | ground truth of the worst and best test videos, as PNGs that
  `dvc plots show` renders next to the curves (rvos.gallery), for both layouts; also on MLflow's
  parent run.
"""

import json
import logging

from rvos import paths
from rvos.atomic import atomic_dir, write_text_atomic
from rvos.config import Config
from rvos.data.layout import dataset_layout, read_list
from rvos.errors import RvosError
from rvos.gallery import Pick, VideoFiles, pick_sequences, strip, write_png
from rvos.metrics import JF
from rvos.metrics.evaluate import evaluate_davis
from rvos.metrics.report import (
    bootstrap_std,
    headline,
    per_sequence_csv,
    per_sequence_rows,
    score_baselines,
    task_for,
)
from rvos.metrics.youtube import evaluate_youtube, per_video_rows
from rvos.pipeline.tracking import StageRun

log = logging.getLogger(__name__)

DAVIS_TEST_SET = "val"  # the DAVIS-layout test split is ImageSets/2017/val.txt (rvos.data.split)


def davis_metrics(config: Config, workers: int) -> tuple[dict, list[dict]]:
    """-> (metrics.json content, per-sequence rows) of the model, with the baselines."""
    task = task_for(config.mode)
    test = read_list(paths.split_list("test"))
    listed = read_list(paths.RAW / "ImageSets" / "2017" / f"{DAVIS_TEST_SET}.txt")
    if sorted(test) != sorted(listed):
        raise RvosError(f"{paths.split_list('test')}: does not match ImageSets/2017/{DAVIS_TEST_SET}.txt")
    with atomic_dir(paths.EVALUATION) as out:
        report = evaluate_davis(paths.RAW, paths.PREDICTIONS, task, DAVIS_TEST_SET, out, workers)
        baselines = score_baselines(paths.RAW, test, task, DAVIS_TEST_SET, out, workers)
    metrics = {
        **headline(report["global"]),
        f"{JF}-bootstrap-std": bootstrap_std(report["per_object"]),
        "test_sequences": len(test),
        "baselines": baselines,
    }
    return metrics, per_sequence_rows(report["per_object"])


def youtube_metrics(config: Config, workers: int) -> tuple[dict, list[dict]]:
    if config.mode != "one_shot":
        raise RvosError(
            "params: mode = zero_shot: YouTube-VOS has no unsupervised protocol; score zero-shot models on "
            "DAVIS-layout data"
        )
    meta = json.loads((paths.SPLITS / "train-val-meta.json").read_text())
    train_meta = json.loads((paths.SPLITS / "train-train-meta.json").read_text())
    seen = {o.get("category", "") for v in train_meta["videos"].values() for o in v["objects"].values()}
    report = evaluate_youtube(paths.RAW / "train" / "Annotations", meta, seen, paths.PREDICTIONS, workers)
    with atomic_dir(paths.EVALUATION) as out:
        (out / "youtube-proxy.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    keys = ("Overall", "J_seen", "J_unseen", "F_seen", "F_unseen")
    metrics = {key: report[key] for key in keys if report.get(key) is not None}
    return metrics, per_video_rows(report["per_object"])


def write_gallery(rows: list[dict], layout: str) -> list[Pick]:
    """reports/gallery/<worst-k|best-k>.png: a strip of frames of the worst and best test videos.

    Fixed names, so that `dvc plots diff` puts the same rank side by side across experiments; the
    video's name and J&F are written in the picture. `layout`: 'davis' or 'youtube' (data/raw).
    """
    picks = pick_sequences(rows)
    with atomic_dir(paths.GALLERY) as out:
        for pick in picks:
            picture = strip(VideoFiles.of(layout, paths.RAW, paths.PREDICTIONS, pick.sequence), pick.title)
            write_png(out / f"{pick.name}.png", picture)
    log.info("gallery: %s", ", ".join(f"{p.name} {p.sequence}" for p in picks) or "no scored test video")
    return picks


def metrics_stage(config: Config, run: StageRun) -> None:
    """Score outputs/predictions; write reports/metrics.json, per_sequence.csv and evaluation/."""
    workers = config.metrics.workers
    layout = dataset_layout(config.data.source)
    if layout == "youtube":
        metrics, rows = youtube_metrics(config, workers)
    else:
        metrics, rows = davis_metrics(config, workers)
    # the gallery first: a frame it cannot read fails the stage before the scores are replaced
    write_gallery(rows, layout)
    write_text_atomic(paths.METRICS, json.dumps(metrics, indent=2) + "\n")
    write_text_atomic(paths.PER_SEQUENCE, per_sequence_csv(rows))
    flat = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    for name, values in metrics.get("baselines", {}).items():
        flat.update({f"baseline_{name}_{k}": v for k, v in values.items()})
    run.log_metrics(flat, parent=True)
    run.log_artifact(paths.METRICS)
    run.log_artifact(paths.PER_SEQUENCE)
    run.log_run_artifacts([paths.METRICS, paths.PER_SEQUENCE])  # the experiment's row shows them too
    run.log_artifact(paths.GALLERY, "gallery", parent=True)
    log.info("metrics: %s", ", ".join(f"{k} {v:.4f}" for k, v in flat.items()))
