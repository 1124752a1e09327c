"""DVC stage `train`: data/lmdb + data/splits -> models/rvos.pt, reports/train/.

Thin entry point (`python -m stages.train`, as `dvc.yaml` runs it; the same as `rvos train`): the
body is `rvos.pipeline.train.train_stage`. Its params and deps are declared in `dvc.yaml`, nowhere
else.
"""

from rvos.pipeline.runner import run_stage
from rvos.pipeline.train import train_stage

if __name__ == "__main__":
    run_stage("train", train_stage)
