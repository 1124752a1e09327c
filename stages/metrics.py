"""DVC stage `metrics`: outputs/predictions + data/raw -> reports/metrics.json, per_sequence.csv, evaluation/.

Thin entry point (`python -m stages.metrics`, as `dvc.yaml` runs it; the same as `rvos metrics`):
the body is `rvos.pipeline.metrics.metrics_stage`. Its params and deps are declared in `dvc.yaml`,
nowhere else.
"""

from rvos.pipeline.metrics import metrics_stage
from rvos.pipeline.runner import run_stage

if __name__ == "__main__":
    run_stage("metrics", metrics_stage)
