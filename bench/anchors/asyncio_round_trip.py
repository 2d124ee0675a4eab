#!/usr/bin/env python3
"""asyncio_round_trip: one coroutine awaits loop.run_in_executor(ex, square, i), one call at a time.

The latency peer of cohort's run_in_executor_round_trip benchmark (same pattern, same tiny call).
Timed region (inside one running event loop, ThreadPoolExecutor(2) already started and warmed up):
N sequential awaits, each timed alone.
Value: microseconds per round trip, the median of each repetition's median; 5 repetitions after 1 warm-up.
"""
import asyncio
import json
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

REPS = 5    # timed repetitions; the reported value is the median of their medians
WARMUP = 1  # untimed repetitions run first


def _r(x):
    return float(f"{x:.6g}")


def square(x):
    return x * x


async def bench(ex, n):
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    values = []
    for _ in range(WARMUP + REPS):
        samples = []
        for i in range(n):
            t0 = clock()
            r = await loop.run_in_executor(ex, square, i)
            samples.append(clock() - t0)
            assert r == i * i
        values.append(statistics.median(samples) * 1e6)
    return values[WARMUP:]


def main():
    n, workers = 10_000, 2
    with ThreadPoolExecutor(workers) as ex:
        values = asyncio.run(bench(ex, n))
    print(json.dumps({
        "name": "asyncio_round_trip",
        "value": _r(statistics.median(values)),
        "unit": "us",
        "params": {"n": n, "executor": "ThreadPoolExecutor", "workers": workers,
                   "pattern": "sequential await loop.run_in_executor", "reps": len(values), "warmup": WARMUP,
                   "min": _r(min(values)), "max": _r(max(values)), "samples": [_r(v) for v in values],
                   "python": platform.python_version()},
    }), flush=True)


if __name__ == "__main__":
    main()
