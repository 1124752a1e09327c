"""DVC stage `report` (also `rvos report`): a run's outputs -> reports/report.html, one self-contained page.

It reads what the earlier stages wrote, in the current folder: reports/metrics.json and
per_sequence.csv (required), reports/train/curves.csv and reports/gallery/ (shown when present: a
run of `metrics` on imported weights has no curves), and for the animations the predictions and
frames of the gallery's videos. The page shows the mode, the commit at report time, the params that
differ from the defaults, the scores with the baselines, the curves, the per-sequence bars, the
gallery and short overlay animations. It is also logged on MLflow's parent run.
"""

import json
import logging

from rvos import paths
from rvos.atomic import write_text_atomic
from rvos.config import Config, config_to_dict, flatten
from rvos.data.layout import dataset_layout
from rvos.errors import RvosError
from rvos.gallery import VideoFiles, animation_frames, pick_sequences
from rvos.html_report import (
    Picture,
    Report,
    animated_webp,
    bars_png,
    curves_png,
    data_uri,
    numbers,
    read_csv,
    render,
)
from rvos.metrics import JF
from rvos.pipeline.tracking import StageRun, git_commit  # the commit MLflow's parent run is tagged with

log = logging.getLogger(__name__)


def changed_params(config: Config) -> list[tuple[str, str, str]]:
    """(key, value, default) of every param whose value is not the shipped default."""
    values, defaults = flatten(config_to_dict(config)), flatten(config_to_dict(Config()))
    return [
        (key, str(value), str(defaults.get(key)))
        for key, value in values.items()
        if value != defaults.get(key)
    ]


def read_metrics() -> dict:
    try:
        metrics = json.loads(paths.METRICS.read_text())
    except FileNotFoundError:
        raise RvosError(f"{paths.METRICS}: missing (run the metrics stage first)") from None
    except json.JSONDecodeError as err:
        raise RvosError(f"{paths.METRICS}: not valid JSON ({err})") from None
    if not isinstance(metrics, dict):
        raise RvosError(f"{paths.METRICS}: not a JSON object")
    return metrics


def per_sequence() -> list[dict]:
    rows = read_csv(paths.PER_SEQUENCE)
    scores = numbers(rows, "J&F", paths.PER_SEQUENCE)
    if any("sequence" not in row for row in rows):
        raise RvosError(f"{paths.PER_SEQUENCE}: column 'sequence' is missing")
    return [{"sequence": row["sequence"], "J&F": score} for row, score in zip(rows, scores)]


def scores_of(metrics: dict) -> tuple[list[tuple[str, dict[str, float]]], list[str]]:
    """Rows of the scores table (the model, then each baseline) and notes for the other numbers."""
    shown = (JF, "J", "F")
    model = {key: metrics[key] for key in shown if isinstance(metrics.get(key), int | float)}
    if not model:  # YouTube-VOS: the proxy's Overall, J/F seen/unseen
        model = {key: value for key, value in metrics.items() if isinstance(value, int | float)}
    rows = [("RVOS (this run)", model)]
    rows += [
        (f"baseline: {name.replace('_', ' ')}", values)
        for name, values in metrics.get("baselines", {}).items()
    ]
    notes = [
        f"{key} {value:.4g}"
        for key, value in metrics.items()
        if isinstance(value, int | float) and key not in model
    ]
    return rows, ["Also: " + ", ".join(notes)] if notes else []


def report_stage(config: Config, run: StageRun) -> None:
    """Write reports/report.html: one page with the run's numbers, charts, gallery and animations."""
    metrics, rows = read_metrics(), per_sequence()
    scores, notes = scores_of(metrics)
    charts = []
    if paths.CURVES.is_file():
        charts.append(
            Picture(
                "training curves (reports/train/curves.csv)", data_uri(curves_png(paths.CURVES), "image/png")
            )
        )
    if rows:
        charts.append(
            Picture("J&F per test sequence (reports/per_sequence.csv)", data_uri(bars_png(rows), "image/png"))
        )
    layout = dataset_layout(config.data.source)
    picks = pick_sequences(rows)
    gallery = [
        Picture(pick.title, data_uri((paths.GALLERY / f"{pick.name}.png").read_bytes(), "image/png"))
        for pick in picks
        if (paths.GALLERY / f"{pick.name}.png").is_file()
    ]
    animations = []
    for pick in picks:
        frames = animation_frames(VideoFiles.of(layout, paths.RAW, paths.PREDICTIONS, pick.sequence))
        animations.append(Picture(pick.title, data_uri(animated_webp(frames), "image/webp")))
    report = Report(
        title=f"RVOS run report ({config.mode})",
        facts={
            "mode": config.mode,
            "data source": config.data.source,
            "commit": git_commit(paths.project_root()),
            "test sequences": str(len(rows)),
        },
        changed=changed_params(config),
        scores=scores,
        notes=notes,
        charts=charts,
        gallery=gallery,
        animations=animations,
    )
    write_text_atomic(paths.REPORT, render(report))
    run.log_artifact(paths.REPORT, parent=True)
    log.info("report: %s (%d KiB)", paths.REPORT, paths.REPORT.stat().st_size // 1024)
