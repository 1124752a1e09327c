"""RVOS: recurrent video object segmentation as a reproducible pipeline.

The public API is `from rvos import Segmenter` (rvos/segmenter.py). It is looked up on first use,
so that `import rvos`, which every stage does, imports nothing: a stage that segments imports
`rvos.segmenter` itself, and tests/test_dvc_deps.py resolves the names in `LAZY` for the others.
"""

import importlib

LAZY = {"Segmenter": "rvos.segmenter"}  # public name -> the module that defines it


def __getattr__(name: str) -> object:
    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'rvos' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *LAZY])
