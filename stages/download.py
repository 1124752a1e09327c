"""DVC stage `download`: the dataset named by data.source -> data/raw.

Thin entry point (`python -m stages.download`, as `dvc.yaml` runs it; the same as `rvos download`):
the body is `rvos.pipeline.download.download_stage`. Its params and deps are declared in `dvc.yaml`,
nowhere else.
"""

from rvos.pipeline.download import download_stage
from rvos.pipeline.runner import run_stage

if __name__ == "__main__":
    run_stage("download", download_stage)
