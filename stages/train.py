"""DVC stage `train`.

params.yaml[mode, seed, model, train, index] + data/lmdb + data/splits -> models/rvos.pt, reports/train/.

Thin entry point: `rvos.stage.run_stage` parses --params, loads the config, opens the MLflow child
run and calls `rvos.train.train_stage`. The same stage runs as `rvos train`.
"""

from rvos.stage import run_stage
from rvos.train import train_stage

if __name__ == "__main__":
    run_stage("train", train_stage)
