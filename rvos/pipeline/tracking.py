"""MLflow tracking for DVC stages: one parent run per DVC experiment, one child run per stage.

Why this shape (see docs/pipeline notes, "MLflow setup"): DVC runs `--temp` / `--queue` experiments
in a temporary copy of the repository that is deleted afterwards, so the store must live at the
*parent* repository root, which DVC exports as `$DVC_ROOT`. Several queue workers may start at
once, so creating the database and the experiment happens under a file lock.

- store: `$MLFLOW_TRACKING_URI` if set, else `sqlite:///<root>/mlflow.db`, artifacts in `<root>/mlartifacts`
- parent run: found by the tag `dvc.run_key` (the DVC experiment name, or `repro-<commit>-<params hash>`)
- child run: one per stage, nested under the parent, tagged `dvc.stage`
"""

import contextlib
import hashlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from rvos.config import Config, config_to_dict, flatten
from rvos.paths import project_root

log = logging.getLogger(__name__)

_PARENT_KEY_TAG = "dvc.run_key"
_ROLE_TAG = "dvc.role"


def tracking_uri(root: Path) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{root / 'mlflow.db'}"


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_key(params_file: Path, commit: str) -> str:
    """Name of the parent run shared by all stages of one `dvc exp run` / `dvc repro`."""
    exp_name = os.environ.get("DVC_EXP_NAME")
    if exp_name:
        return exp_name
    digest = hashlib.sha256(params_file.read_bytes()).hexdigest()[:8]
    return f"repro-{commit[:7]}-{digest}"


def _experiment_id(client: Any, name: str, root: Path) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        location = (root / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


def _find_or_create_parent(client: Any, experiment_id: str, key: str, config: Config, commit: str) -> str:
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{_PARENT_KEY_TAG}` = '{key}' and tags.`{_ROLE_TAG}` = 'parent'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    tags = {
        _PARENT_KEY_TAG: key,
        _ROLE_TAG: "parent",
        "dvc.exp_name": os.environ.get("DVC_EXP_NAME", ""),
        "dvc.baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV", commit),
        "git_commit": commit,
        "mode": config.mode,
    }
    run = client.create_run(experiment_id, run_name=key, tags=tags)
    params = flatten(config_to_dict(config))
    from mlflow.entities import Param

    batch = [Param(name, str(value)) for name, value in sorted(params.items())]
    client.log_batch(run.info.run_id, params=batch)
    return run.info.run_id


class StageRun:
    """What a stage may log: metrics and small artifacts on its child run, final numbers on the parent."""

    def __init__(self, client: Any = None, run_id: str = "", parent_id: str = "") -> None:
        self.client = client
        self.run_id = run_id
        self.parent_id = parent_id

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def log_params(self, params: dict[str, Any]) -> None:
        if self.enabled:
            from mlflow.entities import Param

            flat = flatten(params)
            self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in sorted(flat.items())])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, parent: bool = False) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Metric

        batch = [Metric(_safe_key(k), float(v), 0, step or 0) for k, v in sorted(metrics.items())]
        import time

        now = int(time.time() * 1000)
        batch = [Metric(m.key, m.value, now, m.step) for m in batch]
        self.client.log_batch(self.run_id, metrics=batch)
        if parent:
            self.client.log_batch(self.parent_id, metrics=batch)

    def log_artifact(self, path: str | Path, artifact_dir: str | None = None, parent: bool = False) -> None:
        """A file, or a folder's files, on the stage's run (or with `parent` on the experiment's)."""
        if self.enabled:
            run_id = self.parent_id if parent else self.run_id
            send = self.client.log_artifacts if Path(path).is_dir() else self.client.log_artifact
            send(run_id, str(path), artifact_dir)

    def set_tags(self, tags: dict[str, str], parent: bool = False) -> None:
        if self.enabled:
            for key, value in tags.items():
                self.client.set_tag(self.parent_id if parent else self.run_id, key, str(value))


def _safe_key(key: str) -> str:
    # MLflow metric names allow alphanumerics, _ - . / and spaces; "J&F" is spelled "J_and_F".
    return key.replace("&", "_and_")


@contextlib.contextmanager
def stage_run(stage: str, config: Config, params_file: str | Path = "params.yaml") -> Iterator[StageRun]:
    """Run a stage inside a child MLflow run of this experiment's parent run.

    Set `RVOS_TRACKING=0` to switch tracking off (unit tests, quick local calls).
    """
    # Under torchrun only rank 0 tracks; the other ranks would create duplicate runs.
    if os.environ.get("RVOS_TRACKING", "1") == "0" or os.environ.get("RANK", "0") != "0":
        yield StageRun()
        return
    from mlflow import MlflowClient

    root = project_root()
    uri = tracking_uri(root)
    commit = _git_commit(root)
    key = run_key(Path(params_file), commit)
    # One lock for database creation, experiment creation and parent creation: concurrent queue
    # workers would otherwise race on the Alembic migration or create two parents. The client is
    # made under it too, because making one creates and migrates a new sqlite store.
    with FileLock(str(root / ".mlflow.lock"), timeout=600):
        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, config.mlflow.experiment, root)
        parent_id = _find_or_create_parent(client, experiment_id, key, config, commit)
    client.update_run(parent_id, status="RUNNING")
    child = client.create_run(
        experiment_id,
        run_name=stage,
        tags={"mlflow.parentRunId": parent_id, "dvc.stage": stage, _PARENT_KEY_TAG: key, "mode": config.mode},
    )
    log.info("MLflow: run '%s' / '%s' in %s", key, stage, uri)
    run = StageRun(client, child.info.run_id, parent_id)
    try:
        yield run
    except BaseException:
        client.set_terminated(run.run_id, status="FAILED")
        client.set_terminated(parent_id, status="FAILED")
        raise
    client.set_terminated(run.run_id, status="FINISHED")
    client.set_terminated(parent_id, status="FINISHED")
