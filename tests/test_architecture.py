"""Who may import whom (docs/architecture.md), checked on the source with `ast`.

- the library (every `rvos` module outside `rvos.pipeline`, `rvos.cli` and `rvos.bench`) imports
  neither the stage bodies nor the command-line glue, and reads no fixed pipeline path (`rvos.paths`):
  its functions take paths as arguments;
- only `rvos.pipeline` imports MLflow tracking (`rvos.pipeline.tracking`) or `mlflow` itself;
- the stage scripts in `stages/` are one import of a stage body each.
"""

from pathlib import Path

import pytest

from tests.test_dvc_deps import imported_modules, module_file

ROOT = Path(__file__).resolve().parents[1]
GLUE = ("rvos/pipeline/", "rvos/cli/", "rvos/bench/")


def project_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "rvos").rglob("*.py"))


def library_files(root: Path) -> list[str]:
    return [f for f in project_files(root) if not f.startswith(GLUE)]


def imports_of(root: Path, rel: str) -> set[str]:
    """The project modules that the file `rel` imports (names that are modules, not functions)."""
    return {m for m in imported_modules(root, root / rel) if module_file(root, m)}


def forbidden_imports(root: Path) -> list[str]:
    problems = []
    for rel in library_files(root):
        for module in sorted(imports_of(root, rel)):
            if module.startswith(("rvos.pipeline", "rvos.cli", "rvos.bench")) or module == "rvos.paths":
                problems.append(f"{rel} (library) imports {module}")
    for rel in project_files(root):
        if rel.startswith("rvos/pipeline/"):
            continue
        source = (root / rel).read_text()
        if "rvos.pipeline.tracking" in imports_of(root, rel) or "import mlflow" in source:
            problems.append(f"{rel} imports MLflow tracking (only rvos.pipeline may)")
    return problems


def test_library_imports_no_glue_and_no_tracking():
    assert forbidden_imports(ROOT) == []


def test_the_rule_can_fail(tmp_path):
    (tmp_path / "rvos" / "pipeline").mkdir(parents=True)
    for name in (
        "rvos/__init__.py",
        "rvos/pipeline/__init__.py",
        "rvos/paths.py",
        "rvos/pipeline/tracking.py",
    ):
        (tmp_path / name).write_text("")
    (tmp_path / "rvos" / "inference.py").write_text(
        "def f():\n    from rvos.pipeline.tracking import StageRun\n    from rvos import paths\n"
    )
    assert forbidden_imports(tmp_path) == [
        "rvos/inference.py (library) imports rvos.paths",
        "rvos/inference.py (library) imports rvos.pipeline.tracking",
        "rvos/inference.py imports MLflow tracking (only rvos.pipeline may)",
    ]


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "stages").glob("*.py")))
def test_stage_scripts_run_one_stage_body(script):
    modules = imports_of(ROOT, f"stages/{script}")
    stage = f"rvos.pipeline.{script.removesuffix('.py')}"
    assert stage in modules and modules <= {"rvos", "rvos.pipeline", stage, "rvos.pipeline.runner"}, modules
