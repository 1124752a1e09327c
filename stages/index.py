"""DVC stage `index`: data/raw + data/splits -> data/lmdb (frames and masks pre-resized).

Thin entry point (`python -m stages.index`, as `dvc.yaml` runs it; the same as `rvos index`): the
body is `rvos.pipeline.index.index_stage`. Its params and deps are declared in `dvc.yaml`, nowhere
else.
"""

from rvos.pipeline.index import index_stage
from rvos.pipeline.runner import run_stage

if __name__ == "__main__":
    run_stage("index", index_stage)
