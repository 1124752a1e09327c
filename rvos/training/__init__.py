"""Training RVOS: the clip objective (`objective`), the epoch loop (`loop`) and resumption (`resume`).

The `train` stage (`rvos.pipeline.train`) wires these to the pipeline's files and to MLflow.
"""
