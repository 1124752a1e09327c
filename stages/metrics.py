"""DVC stage `metrics`.

params.yaml[mode, metrics] + outputs/predictions + data/raw -> reports/metrics.json, reports/per_sequence.csv.

Thin entry point: `rvos.stage.run_stage` parses --params, loads the config, opens the MLflow child
run and calls `rvos.metrics.stage.metrics_stage`. The same stage runs as `rvos metrics`.
"""

from rvos.metrics.stage import metrics_stage
from rvos.stage import run_stage

if __name__ == "__main__":
    run_stage("metrics", metrics_stage)
