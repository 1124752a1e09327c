"""`rvos evaluate`: score a DAVIS-layout results folder exactly like the official DAVIS-2017 tool.

Writes, into the output folder (each file atomically):

- `global_results-<set>.csv` and `per-sequence_results-<set>.csv`, byte-for-byte in the official format
  (3 decimals; the "per-sequence" file has one row per object, labelled `<sequence>_<k>`);
- `metrics.json`: the same numbers at full precision, plus per-object Recall and Decay and, for the
  unsupervised task, which proposal was matched to which ground-truth object.

Where the official code prints a message and exits with status 0 (an id above the number of objects,
more than 20 proposals, a missing result frame) this raises `RvosError`, which the CLI turns into exit
status 2.
"""

import csv
import io
import json
import logging
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from rvos.atomic import check_creatable, write_text_atomic
from rvos.errors import RvosError
from rvos.metrics.davis import SequenceScores, object_statistics, score_sequence

log = logging.getLogger(__name__)

TASKS = ("semi-supervised", "unsupervised")
GLOBAL_COLUMNS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
OBJECT_COLUMNS = ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]


# --------------------------------------------------------------------------------------------------
# A process pool over independent jobs (sequences, videos)
# --------------------------------------------------------------------------------------------------


def _init_worker() -> None:
    # One process per core already; OpenCV's own threads would only compete for the same cores.
    cv2.setNumThreads(1)


def parallel_map(
    function: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int,
    desc: str,
    costs: Sequence[float] | None = None,
) -> list[Any]:
    """[function(item) for item in items], over `workers` processes when workers > 1, with a progress bar.

    Items are started in decreasing `costs` order (long sequences first balances the pool). The first
    error is re-raised and cancels the jobs that have not started. `function` must be picklable.
    """
    if workers < 1:
        raise RvosError(f"--workers must be at least 1, got {workers}")
    order = sorted(range(len(items)), key=lambda i: -costs[i]) if costs else list(range(len(items)))
    results: list[Any] = [None] * len(items)
    if workers == 1 or len(items) <= 1:
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            for i in tqdm(order, desc=desc, unit="seq"):
                results[i] = function(items[i])
        finally:
            cv2.setNumThreads(threads)
        return results
    # spawn, not fork: the caller may hold threads (torch, OpenCV) that a forked child would deadlock on.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(min(workers, len(items)), mp_context=context, initializer=_init_worker)
    try:
        futures: dict[Future, int] = {pool.submit(function, items[i]): i for i in order}
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="seq"):
            results[futures[future]] = future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


# --------------------------------------------------------------------------------------------------
# DAVIS layout
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceJob:
    """Everything a worker needs to score one sequence."""

    task: str
    sequence: str
    gt_paths: tuple[Path, ...]
    results: Path


def _score_job(job: SequenceJob) -> SequenceScores:
    return score_sequence(job.task, job.sequence, list(job.gt_paths), job.results)


def annotations_root(davis_root: Path, task: str) -> Path:
    """Ground-truth folder of the task (480p, as the official tool always uses)."""
    semi = davis_root / "Annotations" / "480p"
    if task == "semi-supervised":
        return semi
    unsupervised = davis_root / "Annotations_unsupervised" / "480p"
    if unsupervised.is_dir():
        return unsupervised
    log.warning("%s is absent: scoring the unsupervised task against %s instead", unsupervised, semi)
    return semi


def image_set_sequences(davis_root: Path, task: str, image_set: str) -> list[str]:
    """Sequence names of ImageSets/2017/<set>.txt in file order (2019 for the unsupervised test sets)."""
    year = "2019" if task == "unsupervised" and image_set in ("test-dev", "test-challenge") else "2017"
    path = davis_root / "ImageSets" / year / f"{image_set}.txt"
    if not path.is_file():
        raise RvosError(f"{path}: image set file is missing")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise RvosError(f"{path}: image set lists no sequences")
    return names


def _sequence_jobs(gt_root: Path, results_dir: Path, task: str, sequences: list[str]) -> list[SequenceJob]:
    jobs = []
    for name in sequences:
        frames = tuple(sorted((gt_root / name).glob("*.png")))  # frame ids = sorted PNG stems
        if not frames:
            raise RvosError(f"{gt_root / name}: no ground-truth PNG frames for sequence {name}")
        jobs.append(SequenceJob(task, name, frames, results_dir / name))
    return jobs


# --------------------------------------------------------------------------------------------------
# Aggregation and output files
# --------------------------------------------------------------------------------------------------


def _aggregate(task: str, image_set: str, scores: list[SequenceScores]) -> dict:
    """Per-object statistics, then plain means over all objects of all sequences (the official weighting)."""
    per_object: dict[str, dict[str, float]] = {}
    matching: dict[str, dict[str, int]] = {}
    for seq in scores:
        for row in range(seq.j.shape[0]):
            label = f"{seq.name}_{row + 1}"
            j_stats, f_stats = object_statistics(seq.j[row]), object_statistics(seq.f[row])
            per_object[label] = dict(zip(OBJECT_COLUMNS, (*j_stats, *f_stats)))
            if seq.matching is not None:
                proposal, gt_object = seq.matching[row]
                matching[label] = {"proposal": proposal, "gt_object": gt_object}
    if not per_object:
        raise RvosError(f"{image_set}: no objects to score (every first ground-truth frame is empty)")

    def mean_of(column: str) -> float:
        return float(np.mean([values[column] for values in per_object.values()]))

    global_values = {column: mean_of(column) for column in OBJECT_COLUMNS}
    global_values = {"J&F-Mean": (global_values["J-Mean"] + global_values["F-Mean"]) / 2, **global_values}
    report: dict[str, Any] = {
        "task": task,
        "set": image_set,
        "protocol": "DAVIS-2017 (scoring rules of the official davis2017-evaluation code)",
        "global": {column: global_values[column] for column in GLOBAL_COLUMNS},
        "per_object": per_object,
    }
    if task == "unsupervised":
        report["matching"] = matching
    report["num_sequences"] = len(scores)
    report["num_objects"] = len(per_object)
    report["num_frames_scored"] = int(sum(seq.j.shape[1] for seq in scores))
    return report


def _fixed3(value: float) -> str:
    """A value as pandas writes it with float_format="%.3f" (NaN as an empty field)."""
    return "" if math.isnan(value) else f"{value:.3f}"


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def global_csv(report: dict) -> str:
    """Text of global_results-<set>.csv, in the official format."""
    return _csv_text(GLOBAL_COLUMNS, [[_fixed3(report["global"][c]) for c in GLOBAL_COLUMNS]])


def per_sequence_csv(report: dict) -> str:
    """Text of per-sequence_results-<set>.csv: one row per object, J-Mean and F-Mean."""
    rows = [
        [label, _fixed3(values["J-Mean"]), _fixed3(values["F-Mean"])]
        for label, values in report["per_object"].items()
    ]
    return _csv_text(["Sequence", "J-Mean", "F-Mean"], rows)


def _json_safe(value: Any) -> Any:
    """NaN (a Decay over more than 256 frames) becomes null: JSON has no NaN."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_reports(report: dict, out_dir: Path) -> None:
    """Write the two official CSVs and metrics.json into `out_dir`, each atomically."""
    image_set = report["set"]
    write_text_atomic(out_dir / f"global_results-{image_set}.csv", global_csv(report))
    write_text_atomic(out_dir / f"per-sequence_results-{image_set}.csv", per_sequence_csv(report))
    write_text_atomic(out_dir / "metrics.json", json.dumps(_json_safe(report), indent=2) + "\n")


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def evaluate_davis(
    davis_root: Path, results_dir: Path, task: str, image_set: str, out_dir: Path, workers: int = 2
) -> dict:
    """Score `results_dir` (<sequence>/<frame>.png id maps) against DAVIS ground truth; write the reports.

    Returns the metrics.json content: "global" (J&F-Mean, J/F Mean, Recall, Decay), "per_object"
    (label -> the six statistics), "matching" (unsupervised) and counts. With
    workers > 1 the sequences are scored in "spawn" processes, so a script calling this needs the
    usual `if __name__ == "__main__":` guard.
    """
    start = time.perf_counter()
    davis_root, results_dir, out_dir = Path(davis_root), Path(results_dir), Path(out_dir)
    if task not in TASKS:
        raise RvosError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    check_creatable(out_dir)  # before the scoring, not after it
    if not results_dir.is_dir():
        raise RvosError(f"{results_dir}: results folder is missing")
    gt_root = annotations_root(davis_root, task)
    if not gt_root.is_dir():
        raise RvosError(f"{gt_root}: ground-truth folder is missing")
    sequences = image_set_sequences(davis_root, task, image_set)
    jobs = _sequence_jobs(gt_root, results_dir, task, sequences)
    log.info("scoring %d sequences of %s (%s) with %d worker(s)", len(jobs), image_set, task, workers)
    scores = parallel_map(_score_job, jobs, workers, f"{task} {image_set}", [len(j.gt_paths) for j in jobs])
    report = _aggregate(task, image_set, scores)
    # The duration is logged, not written: the reports are outputs and must be byte-reproducible.
    wall_s = time.perf_counter() - start
    write_reports(report, out_dir)
    log.info(
        "%s %s: J&F %.4f  J %.4f  F %.4f  (%d objects, %.1f s) -> %s",
        task,
        image_set,
        report["global"]["J&F-Mean"],
        report["global"]["J-Mean"],
        report["global"]["F-Mean"],
        report["num_objects"],
        wall_s,
        out_dir,
    )
    return report
