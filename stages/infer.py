"""DVC stage `infer`.

params.yaml[mode, infer] + models/rvos.pt + data/lmdb -> outputs/predictions/<video>/<frame>.png.

Thin entry point: `rvos.stage.run_stage` parses --params, loads the config, opens the MLflow child
run and calls `rvos.infer.infer_stage`. The same stage runs as `rvos infer`.
"""

from rvos.infer import infer_stage
from rvos.stage import run_stage

if __name__ == "__main__":
    run_stage("infer", infer_stage)
