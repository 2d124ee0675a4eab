#!/usr/bin/env python3
"""manager_dict_ops: Manager().dict() set+get from a child process (the shared anchor 12).

A child process does 5_000 iterations of d[i] = i; d[i] (10_000 round trips to the manager's server),
timing itself. One JSON line; value: ops/s, median of 5 repetitions after 1 warm-up; fork start method.
"""
import json
import multiprocessing as mp
import platform
import statistics
import time


def _r(x):
    return float(f"{x:.6g}")


def child(d, pairs, reps, conn):
    for i in range(10):
        d[i] = i
        d[i]
    samples = []
    for _ in range(reps):
        total = 0
        t0 = time.perf_counter()
        for i in range(pairs):
            d[i] = i
            total += d[i]
        samples.append(time.perf_counter() - t0)
        assert total == pairs * (pairs - 1) // 2
    conn.send(samples)


def main():
    ops = 10_000
    ctx = mp.get_context("fork")
    with ctx.Manager() as manager:
        d = manager.dict()
        rx, tx = ctx.Pipe(duplex=False)
        p = ctx.Process(target=child, args=(d, ops // 2, 6, tx))
        p.start()
        samples = rx.recv()
        p.join()
    values = [ops / dt for dt in samples[1:]]
    print(json.dumps({"name": "manager_dict_ops", "value": _r(statistics.median(values)), "unit": "ops/s",
                      "params": {"ops": ops, "reps": len(values), "warmup": 1,
                                 "samples": [_r(v) for v in values], "python": platform.python_version()}}),
          flush=True)


if __name__ == "__main__":
    main()
