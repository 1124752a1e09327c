"""A real `mlflow server` on 127.0.0.1 over a store the pipeline wrote, and the runs worth comparing.

Shared by tests/test_mlflow_server.py (REST API) and tests/mlflow_compare.py (the compare view's
screenshot for the README).
"""

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def mlflow_server(store: Path, log: Path) -> Iterator[str]:
    """Serve the sqlite `store` as `mlflow ui` does started next to it (artifacts in ./mlartifacts);
    yields the server's URL once it answers, the server's output appended to `log`."""
    port = free_port()
    command = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{store.resolve()}"]
    command += ["--artifacts-destination", str(store.resolve().parent / "mlartifacts")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("a") as out:
        server = subprocess.Popen(command, cwd=store.parent, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"mlflow server did not start; its log {log}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # uvicorn's graceful shutdown can be slow on a loaded CPU
            server.kill()
            server.wait()


def parent_runs_to_compare(client: Any, experiment_id: str) -> list[Any]:
    """The newest parent run of each mode (oldest mode first), or the newest two parent runs when
    the store holds one mode only. Parent runs are those without MLflow's parent tag; only scored
    ones count (with the headline J_and_F): a run still training, or one that failed, has nothing to
    compare."""
    runs = client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags and "J_and_F" in r.data.metrics]
    newest: dict[str, Any] = {}
    for run in parents:
        if run.data.tags.get("mode"):
            newest.setdefault(run.data.tags["mode"], run)
    chosen = list(newest.values()) if len(newest) >= 2 else parents[:2]
    return sorted(chosen, key=lambda run: run.info.start_time)
