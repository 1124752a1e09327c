"""Speed benchmarks (`rvos bench ...`), whose figures go to docs/benchmarks.md.

- `loader`: clips/s from the raw folders vs the LMDB index;
- `train`: training clips/s of the params' model and the paper preset;
- `metrics`: our DAVIS evaluation against the official code, speed and numbers.

Each benchmark times its candidates in the same process, interleaved, and reports medians and the
ratio to the anchor measured in the same run, because the machines are shared and noisy.
"""

import statistics
import time
from collections.abc import Callable


def median_rate(run: Callable[[], int], repeats: int) -> tuple[float, list[float]]:
    """Call `run` (returns how many items it processed) `repeats` times -> (median items/s, all rates)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates), rates
