#!/usr/bin/env python3
"""manager_object_call: a method call on an object hosted in a BaseManager server process, what Python's
multiprocessing offers for an object living in another process (the shared anchor 16, with the
repetitions' samples kept for the spread).

One JSON line: process_actor_call: proxy.add(1) one at a time, 10_000 calls; value: calls/s.
Median of 5 repetitions after 1 warm-up; the fork start method; the server is started before timing.
"""
import json
import multiprocessing as mp
import platform
import statistics
import time
from multiprocessing.managers import BaseManager


class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k):
        self.n += k
        return self.n


class CounterManager(BaseManager):
    pass


CounterManager.register("Counter", Counter)


def _r(x):
    return float(f"{x:.6g}")


def main():
    mp.set_start_method("fork")
    calls = 10_000
    with CounterManager() as manager:
        counter = manager.Counter()
        values = []
        for rep in range(6):
            t0 = time.perf_counter()
            for _ in range(calls):
                counter.add(1)
            elapsed = time.perf_counter() - t0
            if rep:
                values.append(calls / elapsed)
    print(json.dumps({"name": "process_actor_call", "value": _r(statistics.median(values)), "unit": "calls/s",
                      "params": {"calls": calls, "reps": len(values), "warmup": 1,
                                 "samples": [_r(v) for v in values], "python": platform.python_version()}}),
          flush=True)


if __name__ == "__main__":
    main()
