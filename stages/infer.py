"""DVC stage `infer`: models/rvos.pt + data/lmdb + data/raw -> outputs/predictions.

Thin entry point (`python -m stages.infer`, as `dvc.yaml` runs it; the same as `rvos infer`): the
body is `rvos.pipeline.infer.infer_stage`. Its params and deps are declared in `dvc.yaml`, nowhere
else.
"""

from rvos.pipeline.infer import infer_stage
from rvos.pipeline.runner import run_stage

if __name__ == "__main__":
    run_stage("infer", infer_stage)
