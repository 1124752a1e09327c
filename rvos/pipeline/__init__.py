"""The pipeline's stage bodies: one module per DVC stage, plus the runner and the MLflow tracking.

Each stage body reads its inputs from the fixed locations of `rvos.paths`, calls the library, writes
its outputs and logs to its MLflow run. This package is the only one that imports
`rvos.pipeline.tracking` (MLflow); nothing in the library imports it (docs/architecture.md).

`STAGES` names each stage's body for `rvos <stage>`; `stages/<name>.py` (what `dvc.yaml` runs)
imports the same functions.
"""

# stage name -> ("module:function" of its body, one line of help)
STAGES = {
    "download": (
        "rvos.pipeline.download:download_stage",
        "bring the dataset named by data.source into data/raw",
    ),
    "split": ("rvos.pipeline.split:split_stage", "write train / valid / test video lists into data/splits"),
    "index": ("rvos.pipeline.index:index_stage", "store resized frames and masks in the LMDB data/lmdb"),
    "train": (
        "rvos.pipeline.train:train_stage",
        "train RVOS; best checkpoint in models/, curves in reports/train",
    ),
    "infer": ("rvos.pipeline.infer:infer_stage", "segment the test videos into outputs/predictions"),
    "format-submission": (
        "rvos.pipeline.format_submission:format_submission_stage",
        "zip the predictions in the official server layout (outputs/submission.zip)",
    ),
    "metrics": ("rvos.pipeline.metrics:metrics_stage", "score the predictions into reports/metrics.json"),
    "report": (
        "rvos.pipeline.report:report_stage",
        "one self-contained HTML page of the run's outputs (reports/report.html)",
    ),
}
