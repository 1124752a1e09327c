"""DVC stage `index`.

params.yaml[data.source, index] + data/raw + data/splits -> data/lmdb (resized frames and masks).

Thin entry point: `rvos.stage.run_stage` parses --params, loads the config, opens the MLflow child
run and calls `rvos.data.lmdb_index.index_stage`. The same stage runs as `rvos index`.
"""

from rvos.data.lmdb_index import index_stage
from rvos.stage import run_stage

if __name__ == "__main__":
    run_stage("index", index_stage)
