"""DVC stage `split`: data/raw -> data/splits (train / valid / test lists).

Thin entry point (`python -m stages.split`, as `dvc.yaml` runs it; the same as `rvos split`): the
body is `rvos.pipeline.split.split_stage`. Its params and deps are declared in `dvc.yaml`, nowhere
else.
"""

from rvos.pipeline.runner import run_stage
from rvos.pipeline.split import split_stage

if __name__ == "__main__":
    run_stage("split", split_stage)
