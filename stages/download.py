"""DVC stage `download`.

params.yaml[data, seed] -> data/raw (the dataset in its DAVIS-2017 or YouTube-VOS layout).

Thin entry point: `rvos.stage.run_stage` parses --params, loads the config, opens the MLflow child
run and calls `rvos.data.sources.download_stage`. The same stage runs as `rvos download`.
"""

from rvos.data.sources import download_stage
from rvos.stage import run_stage

if __name__ == "__main__":
    run_stage("download", download_stage)
