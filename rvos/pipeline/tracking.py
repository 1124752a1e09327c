"""MLflow tracking for DVC stages: one parent run per DVC experiment, one child run per stage.

Why this shape (see docs/pipeline notes, "MLflow setup"): DVC runs `--temp` / `--queue` experiments
in a temporary copy of the repository that is deleted afterwards, so the store must live at the
*parent* repository root, which DVC exports as `$DVC_ROOT`. Several queue workers may start at
once, so creating the database and the experiment happens under a file lock.

- store: `$MLFLOW_TRACKING_URI` if set, else `sqlite:///<root>/mlflow.db` with artifacts in
  `<root>/mlartifacts`, recorded as `mlflow-artifacts:/<experiment>/...` URIs: the layout that
  `mlflow ui` / `mlflow server` serve from their working directory, so the pair survives being moved
  (an absolute `file://` URI in the database would not)
- parent run: found by the tag `dvc.run_key` (the DVC experiment name, or `repro-<commit>-<params hash>`),
  named `<mode> · <DVC experiment name>` or `<mode> · repro-<commit>`
- child run: one per stage, nested under the parent, tagged `dvc.stage`, named `<stage> · <mode>`
- every run is tagged with `mode`, `seed`, `dvc.exp_name` (under `dvc exp run`) and the git commit
"""

import contextlib
import hashlib
import logging
import os
import re
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from rvos.config import Config, config_to_dict, flatten
from rvos.paths import project_root

log = logging.getLogger(__name__)

_PARENT_KEY_TAG = "dvc.run_key"
_ROLE_TAG = "dvc.role"
# MLflow 3's UI opens an experiment on its GenAI "Overview" (traces) unless told otherwise; this
# kind makes it open on the runs table (the values are the UI's ExperimentKind enum).
_KIND_TAG = "mlflow.experimentKind"
_KIND = "custom_model_development"
_NOTE_TAG = "mlflow.note.content"  # the experiment's description in the UI
_NOTE = (
    "One parent run per `dvc repro` / `dvc exp run`, named `<mode> · <DVC experiment>`, with the "
    "params and the headline metrics J_and_F, J, F (reports/metrics.json under the same names); "
    "one child run per stage. Tags: mode, seed, dvc.exp_name, git_commit."
)
# Where artifacts go in the default store: relative to the store (see the module docstring).
_PROXY_SCHEME = "mlflow-artifacts:"
ARTIFACTS_DIR = "mlartifacts"


def tracking_uri(root: Path) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{root / 'mlflow.db'}"


def git_commit(root: Path) -> str:
    # Under `dvc exp run` the code is the experiment's baseline commit (plus the workspace's
    # changes): the parent repository's HEAD may have moved on while a queued experiment waited.
    baseline = os.environ.get("DVC_EXP_BASELINE_REV")
    if baseline:
        return baseline
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_key(params_file: Path, commit: str) -> str:
    """Identity of the parent run shared by all stages of one `dvc exp run` / `dvc repro`."""
    exp_name = os.environ.get("DVC_EXP_NAME")
    if exp_name:
        return exp_name
    digest = hashlib.sha256(params_file.read_bytes()).hexdigest()[:8]
    return f"repro-{commit[:7]}-{digest}"


def parent_run_name(config: Config, commit: str) -> str:
    """What the runs table shows: the mode first, then the DVC experiment or the commit."""
    label = os.environ.get("DVC_EXP_NAME") or f"repro-{commit[:7]}"
    return f"{config.mode} · {label}"


def run_tags(config: Config, commit: str) -> dict[str, str]:
    """Tags of every run, parent and child: what to filter and group the runs table by."""
    tags = {
        "mode": config.mode,
        "seed": str(config.seed),
        "git_commit": commit,
        "mlflow.source.git.commit": commit,  # the UI's "Version" column
    }
    exp_name = os.environ.get("DVC_EXP_NAME")
    if exp_name:
        tags["dvc.exp_name"] = exp_name
        tags["dvc.baseline_rev"] = commit
    return tags


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        # Experiments created before the kind tag existed would still open on GenAI traces.
        if _KIND_TAG not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, _KIND_TAG, _KIND)
        return experiment.experiment_id
    location = None
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        # A store given by the user keeps its own artifact root; ours is proxied, hence movable.
        location = f"{_PROXY_SCHEME}/{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"
    return client.create_experiment(
        name, artifact_location=location, tags={_KIND_TAG: _KIND, _NOTE_TAG: _NOTE}
    )


def _find_or_create_parent(client: Any, experiment_id: str, key: str, config: Config, commit: str) -> str:
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{_PARENT_KEY_TAG}` = '{key}' and tags.`{_ROLE_TAG}` = 'parent'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    tags = {_PARENT_KEY_TAG: key, _ROLE_TAG: "parent", **run_tags(config, commit)}
    run = client.create_run(experiment_id, run_name=parent_run_name(config, commit), tags=tags)
    params = flatten(config_to_dict(config))
    from mlflow.entities import Param

    batch = [Param(name, str(value)) for name, value in sorted(params.items())]
    client.log_batch(run.info.run_id, params=batch)
    return run.info.run_id


class StageRun:
    """What a stage may log: metrics and small artifacts on its child run, final numbers on the parent."""

    def __init__(self, client: Any = None, run_id: str = "", parent_id: str = "", root: Path | None = None):
        self.client = client
        self.run_id = run_id
        self.parent_id = parent_id
        self.root = root  # the project root, where the default store's `mlartifacts/` lives

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

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in sorted(metrics.items())]
        self.client.log_batch(self.run_id, metrics=batch)
        if parent:
            self.client.log_batch(self.parent_id, metrics=batch)

    def log_artifact(self, path: str | Path, artifact_dir: str | None = None, parent: bool = False) -> None:
        """A file, or a folder's files, on the stage's run (or with `parent` on the experiment's)."""
        if self.enabled:
            self._log_file(self.parent_id if parent else self.run_id, Path(path), artifact_dir)

    def log_run_artifacts(self, paths: Iterable[str | Path], artifact_dir: str | None = None) -> None:
        """Log files to the parent run (the experiment's row in the runs table)."""
        for path in paths:
            self.log_artifact(path, artifact_dir, parent=True)

    def _log_file(self, run_id: str, path: Path, artifact_dir: str | None) -> None:
        artifact_uri = self.client.get_run(run_id).info.artifact_uri
        uri = self.client.tracking_uri
        if artifact_uri.startswith(_PROXY_SCHEME) and not uri.startswith(("http://", "https://")):
            # No server between us and the default store: write where `mlflow ui`, started at the
            # root, resolves the proxied URI (its --artifacts-destination, ./mlartifacts).
            from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

            relative = artifact_uri.removeprefix(_PROXY_SCHEME).lstrip("/")
            root = self.root or project_root()
            repository = LocalArtifactRepository(str(root / ARTIFACTS_DIR / relative))
            if path.is_dir():
                repository.log_artifacts(str(path), artifact_dir)
            else:
                repository.log_artifact(str(path), artifact_dir)
        elif path.is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_dir)
        else:
            self.client.log_artifact(run_id, str(path), artifact_dir)

    def set_tags(self, tags: dict[str, str], parent: bool = False) -> None:
        if self.enabled:
            for key, value in tags.items():
                self.client.set_tag(self.parent_id if parent else self.run_id, key, str(value))


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
    commit = git_commit(root)
    key = run_key(Path(params_file), commit)
    # One lock for database creation, experiment creation and parent creation: concurrent queue
    # workers would otherwise race on the Alembic migration or create two parents. The client is
    # made under it too, because making one creates and migrates a new sqlite store.
    with FileLock(str(root / ".mlflow.lock"), timeout=600):
        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, config.mlflow.experiment)
        parent_id = _find_or_create_parent(client, experiment_id, key, config, commit)
    client.update_run(parent_id, status="RUNNING")
    child = client.create_run(
        experiment_id,
        run_name=f"{stage} · {config.mode}",
        tags={
            "mlflow.parentRunId": parent_id,
            "dvc.stage": stage,
            _PARENT_KEY_TAG: key,
            **run_tags(config, commit),
        },
    )
    log.info("MLflow: run '%s' / '%s' in %s", parent_run_name(config, commit), stage, uri)
    run = StageRun(client, child.info.run_id, parent_id, root)
    try:
        yield run
    except BaseException:
        client.set_terminated(run.run_id, status="FAILED")
        client.set_terminated(parent_id, status="FAILED")
        raise
    client.set_terminated(run.run_id, status="FINISHED")
    client.set_terminated(parent_id, status="FINISHED")
