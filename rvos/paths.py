"""Fixed locations of the pipeline's outputs, relative to the repository root (the stage's cwd).

They match the `outs:` of `dvc.yaml`; keeping them fixed (not templated by mode) lets
`dvc metrics diff` and `dvc exp show` compare one file across experiments.
"""

from pathlib import Path

RAW = Path("data/raw")
SPLITS = Path("data/splits")
LMDB = Path("data/lmdb")
MODELS = Path("models")
BEST_CHECKPOINT = MODELS / "rvos.pt"
TRAIN_REPORTS = Path("reports/train")
PREDICTIONS = Path("outputs/predictions")
SUBMISSION = Path("outputs/submission.zip")
REPORTS = Path("reports")
