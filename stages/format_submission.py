"""DVC stage `format_submission`.

outputs/predictions + data/splits -> outputs/submission.zip (official server layout).

Thin entry point: `rvos.stage.run_stage` parses --params, loads the config, opens the MLflow child
run and calls `rvos.submission.format_submission_stage`. The same stage runs as `rvos format-submission`.
"""

from rvos.stage import run_stage
from rvos.submission import format_submission_stage

if __name__ == "__main__":
    run_stage("format_submission", format_submission_stage)
