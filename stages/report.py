"""DVC stage `report`: the run's outputs -> reports/report.html, one self-contained page.

Thin entry point (`python -m stages.report`, as `dvc.yaml` runs it; the same as `rvos report`):
the body is `rvos.pipeline.report.report_stage`. Its params and deps are declared in `dvc.yaml`,
nowhere else.
"""

from rvos.pipeline.report import report_stage
from rvos.pipeline.runner import run_stage

if __name__ == "__main__":
    run_stage("report", report_stage)
