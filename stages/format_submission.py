"""DVC stage `format-submission`: outputs/predictions -> outputs/submission.zip.

Thin entry point (`python -m stages.format_submission`, as `dvc.yaml` runs it; the same as `rvos
format-submission`): the body is `rvos.pipeline.format_submission.format_submission_stage`. Its
params and deps are declared in `dvc.yaml`, nowhere else.
"""

from rvos.pipeline.format_submission import format_submission_stage
from rvos.pipeline.runner import run_stage

if __name__ == "__main__":
    run_stage("format_submission", format_submission_stage)
