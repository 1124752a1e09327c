"""Every fixed location of the pipeline, relative to the repository root (the stage's cwd).

The outputs match the `outs:` of `dvc.yaml`; keeping them fixed (not templated by mode) lets
`dvc metrics diff` and `dvc exp show` compare one file across experiments. Only `rvos.pipeline`
(the stage bodies) and the benchmarks read this module: library functions take paths as arguments.
"""

import os
from pathlib import Path

# ------------------------------------------------------------------------------- DVC outputs
PARAMS_SCHEMA = Path("data/params.schema.json")  # check-params: the known keys
RAW = Path("data/raw")
SPLITS = Path("data/splits")
LMDB = Path("data/lmdb")
MODELS = Path("models")
BEST_CHECKPOINT = MODELS / "rvos.pt"
TRAIN_REPORTS = Path("reports/train")
CURVES = TRAIN_REPORTS / "curves.csv"
TRAIN_SUMMARY = TRAIN_REPORTS / "summary.json"
PREDICTIONS = Path("outputs/predictions")
SUBMISSION = Path("outputs/submission.zip")
REPORTS = Path("reports")
METRICS = REPORTS / "metrics.json"
PER_SEQUENCE = REPORTS / "per_sequence.csv"
EVALUATION = REPORTS / "evaluation"
GALLERY = REPORTS / "gallery"  # worst and best test videos as pictures (DVC image plots)
REPORT = REPORTS / "report.html"


def split_list(split: str) -> Path:
    """data/splits/<split>.txt: one video name per line (train, valid or test)."""
    return SPLITS / f"{split}.txt"


# --------------------------------------------------- outside DVC's outputs, at the project root


def project_root() -> Path:
    """The repository the run belongs to: `$DVC_ROOT` (the parent repo of a --temp or queued
    experiment, which runs in a temporary copy) or the cwd. What must outlive one run lives here."""
    return Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()


def download_cache() -> Path:
    """Downloaded archives, kept between runs (DVC deletes a stage's outputs before re-running it)."""
    return project_root() / ".rvos" / "downloads"


def training_resume_root() -> Path:
    """Per-run folders with the last finished epoch, so that a killed training resumes."""
    return project_root() / ".rvos" / "train"
