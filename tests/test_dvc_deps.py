"""`dvc.yaml` must tell the truth about the code each stage runs.

DVC re-runs a stage only when one of its `deps` changes, so a project module that a stage imports but
does not list is a silent reproducibility hole (edit it, `dvc repro` says "nothing changed"), and a
listed module the stage never imports re-runs it for nothing. The import graph is read with `ast`,
never by importing the project: fast, no torch, and lazy imports inside functions count too.
"""

import ast
import re
from collections import deque
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = {"rvos", "stages"}
ENTRY_RE = re.compile(r"\bpython\s+-m\s+(stages\.[A-Za-z_]\w*)")


# --- the checker: plain functions of the repository root, so test C can run them on a fake repo ---


def load_stages(root):
    return yaml.safe_load((root / "dvc.yaml").read_text())["stages"]


def entry_module(cmd):
    """`python -m stages.infer --x 1` -> `stages.infer`; None for any other command."""
    match = ENTRY_RE.search(cmd if isinstance(cmd, str) else " ".join(cmd))
    return match.group(1) if match else None


def module_file(root, module):
    """`rvos.a.b` -> `rvos/a/b.py` or `rvos/a/b/__init__.py`; None for a name that is not a file
    (a function or class imported from a module, or a namespace package such as `stages`)."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def with_parents(module):
    """`rvos.a.b` -> rvos, rvos.a, rvos.a.b: importing a module first runs its packages' __init__.py."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def lazy_names(root):
    """`rvos.LAZY` read from rvos/__init__.py: public names that `rvos` imports on first use
    (`from rvos import Segmenter` runs rvos/segmenter.py although no import statement says so)."""
    init = root / "rvos" / "__init__.py"
    if not init.is_file():
        return {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "LAZY" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def imported_modules(root, path):
    """Every module that the file `path` may import, at module level or lazily inside a function."""
    # The package that relative imports start from: `rvos/a/b.py` and `rvos/a/__init__.py` -> rvos.a.
    package = path.relative_to(root).with_suffix("").parts[:-1]
    lazy = lazy_names(root)
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.Attribute)
            and getattr(node.value, "id", None) == "rvos"
            and node.attr in lazy
        ):
            modules.append(lazy[node.attr])  # `rvos.Segmenter` after `import rvos`
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module
            modules.append(base)
            # `from rvos.data import download` may name a submodule; the caller drops it if not a file.
            modules += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
            if base == "rvos":
                modules += [lazy[alias.name] for alias in node.names if alias.name in lazy]
    return [m for m in modules if m and m.split(".")[0] in PROJECT_PACKAGES]


def imported_files(root, module):
    """Repo-relative path -> the file that first imported it (None for the entry point), over the
    transitive closure of project imports starting at `module`."""
    via = {}
    # Breadth first, so that "via" names the importer nearest the entry point.
    queue = deque((m, None) for m in with_parents(module))
    while queue:
        name, importer = queue.popleft()
        path = module_file(root, name)
        if path is None:
            continue
        rel = path.relative_to(root).as_posix()
        if rel in via:
            continue
        via[rel] = importer
        for imported in imported_modules(root, path):
            queue.extend((m, rel) for m in with_parents(imported))
    return via


def stage_deps(stage):
    # Deps are strings; normalise `./x` and `x/` so that folder containment is a prefix test.
    return [str(dep).removeprefix("./").rstrip("/") for dep in stage.get("deps", [])]


def covers(dep, rel):
    return rel == dep or rel.startswith(dep + "/")


def stage_imports(root, name, stage):
    module = entry_module(stage["cmd"])
    assert module, f"stage {name!r}: cmd {stage['cmd']!r} is not `python -m stages.<name>`"
    assert module_file(root, module), f"stage {name!r} runs {module}, which is not a file under {root}"
    return imported_files(root, module)


def uncovered(root, name):
    """One message per project file the stage imports that no dep covers."""
    stage = load_stages(root)[name]
    deps = stage_deps(stage)
    problems = []
    for rel, importer in sorted(stage_imports(root, name, stage).items()):
        if not any(covers(dep, rel) for dep in deps):
            how = f"via {importer}" if importer else "its entry point"
            problems.append(f"stage {name!r} imports {rel} ({how}) but dvc.yaml does not list it in deps")
    return problems


def too_broad(root, name):
    """One message per code dep (under rvos/ or stages/) that the stage does not need."""
    stage = load_stages(root)[name]
    imported = stage_imports(root, name, stage)
    problems = []
    for dep in stage_deps(stage):
        if dep.split("/")[0] not in PROJECT_PACKAGES:
            continue  # data, models, ...: not code, not this test's business
        path = root / dep
        if path.is_dir():
            inside = sorted(p.relative_to(root).as_posix() for p in path.rglob("*.py"))
            unused = [rel for rel in inside if rel not in imported]
            if len(unused) == len(inside):
                problems.append(f"stage {name!r} lists folder {dep} in deps but imports nothing in it")
            else:
                # A folder dep hashes every file in it: editing an unrelated one would re-run the stage.
                problems += [
                    f"stage {name!r} lists folder {dep} in deps but never imports {rel}: the folder is "
                    f"too broad (editing {rel} would re-run the stage); list the imported files instead"
                    for rel in unused
                ]
        elif not path.exists():
            problems.append(f"stage {name!r} lists {dep} in deps but it does not exist (stale dep)")
        elif dep not in imported:
            problems.append(f"stage {name!r} lists {dep} in deps but never imports it (needless dep)")
    return problems


# --- the tests ---

STAGE_NAMES = sorted(load_stages(ROOT))


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_deps_cover_every_imported_module(name):
    problems = uncovered(ROOT, name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_code_deps_are_tight(name):
    problems = too_broad(ROOT, name)
    assert not problems, "\n".join(problems)


def test_checker_catches_a_lazy_import_missing_from_deps(tmp_path):
    files = {
        "stages/s.py": "import rvos.a\n",
        "rvos/__init__.py": "",
        # The import hides inside a function, as the project's heavy imports do.
        "rvos/a.py": "def g():\n    from rvos.b import f\n    return f()\n",
        "rvos/b.py": "def f():\n    return 1\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)

    def write_dvc_yaml(deps):
        stage = {"cmd": "python -m stages.s --flag", "deps": deps}
        (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": stage}}))

    write_dvc_yaml(["stages/s.py", "rvos/__init__.py", "rvos/a.py"])
    assert uncovered(tmp_path, "s") == [
        "stage 's' imports rvos/b.py (via rvos/a.py) but dvc.yaml does not list it in deps"
    ]
    assert too_broad(tmp_path, "s") == []

    write_dvc_yaml(["stages/s.py", "rvos"])
    assert uncovered(tmp_path, "s") == []
    assert too_broad(tmp_path, "s") == []

    # The tight-list check fails too: an unrelated module in a listed folder makes the folder too broad.
    (tmp_path / "rvos/c.py").write_text("")
    assert [p.split(":")[0] for p in too_broad(tmp_path, "s")] == [
        "stage 's' lists folder rvos in deps but never imports rvos/c.py"
    ]


def test_checker_follows_the_packages_lazy_names(tmp_path):
    # `import rvos` runs nothing else, but `from rvos import Thing` runs the module behind the name.
    files = {
        "stages/s.py": "import rvos\n",
        "stages/t.py": "from rvos import Thing\n",
        "rvos/__init__.py": "import importlib\nLAZY = {'Thing': 'rvos.b'}\n",
        "rvos/b.py": "Thing = 1\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    stages = {
        name: {"cmd": f"python -m stages.{name}", "deps": [f"stages/{name}.py", "rvos/__init__.py"]}
        for name in ("s", "t")
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    assert uncovered(tmp_path, "s") == []
    assert uncovered(tmp_path, "t") == [
        "stage 't' imports rvos/b.py (via stages/t.py) but dvc.yaml does not list it in deps"
    ]


def test_stage_docstrings_list_no_params():
    # Params belong to dvc.yaml alone; a copy in the docstring drifts from it.
    offenders = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "stages").glob("*.py"))
        if "params.yaml[" in (ast.get_docstring(ast.parse(path.read_text())) or "")
    ]
    assert not offenders, f"these stage docstrings list params (keep them in dvc.yaml only): {offenders}"
