"""DVC stage `split`.

params.yaml[data.source, seed, split] + data/raw -> data/splits/{train,valid,test}.txt.

Thin entry point: `rvos.stage.run_stage` parses --params, loads the config, opens the MLflow child
run and calls `rvos.data.split.split_stage`. The same stage runs as `rvos split`.
"""

from rvos.data.split import split_stage
from rvos.stage import run_stage

if __name__ == "__main__":
    run_stage("split", split_stage)
