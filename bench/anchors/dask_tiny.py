#!/usr/bin/env python3
"""dask_tiny: Dask distributed (Debian's python3-distributed 2022.12), a LocalCluster of WORKERS
worker processes with one thread each: submit 10_000 tiny tasks, gather all results: a peer of
the Redis-backed task executor's benchmark.

Cluster: LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, host="127.0.0.1",
dashboard_address=None), so scheduler and workers listen on loopback ports the system picks and no
dashboard is served; otherwise distributed's defaults (nannies, workers started with 'spawn',
work stealing on, and the scheduler-side queuing of root tasks that 2022.11 made the default:
distributed.scheduler.worker-saturation=1.1, so the scheduler hands a worker about one task per
thread at a time and every task costs a scheduler-worker round trip; with worker-saturation=inf,
the pre-2022.11 behaviour, the same workload runs several times faster).

Submission is what the Dask documentation recommends for many tasks, one client.map call:
  futures = client.map(square, range(N), pure=False)
  total = sum(client.gather(futures))
(pure=False: every repetition submits new tasks instead of finding the previous repetition's keys).

Timed region: the client.map call + client.gather of all N results, on an already-started cluster
that has run the warm-up.  Value: tasks/s (N / elapsed), median of 3 repetitions after 1 warm-up;
each repetition's futures are released before the next.  The client and the cluster are closed at
the end, even on failure; an alarm ends a run that takes longer than 300 s.

Usage: /usr/bin/python3 dask_tiny.py [WORKERS]   (default 2)
"""
import json
import platform
import signal
import statistics
import sys
import time

from distributed import Client, LocalCluster

REPS = 3    # timed repetitions; the reported value is their median
WARMUP = 1  # untimed repetitions run first
N = 10_000
TIMEOUT = 300  # s for the whole run, cluster start-up included


def _r(x):
    return float(f"{x:.6g}")


def measure(run_once):
    for _ in range(WARMUP):
        run_once()
    return [run_once() for _ in range(REPS)]


def emit(name, values, unit, params):
    print(json.dumps({
        "name": name,
        "value": _r(statistics.median(values)),
        "unit": unit,
        "params": dict(params, reps=len(values), warmup=WARMUP,
                       min=_r(min(values)), max=_r(max(values)),
                       samples=[_r(v) for v in values],
                       python=platform.python_version()),
    }), flush=True)


def square(x):
    return x * x


def _timed_out(signum, frame):
    raise TimeoutError(f"dask_tiny: the run took longer than {TIMEOUT} s")


def main():
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    n = N
    expected = sum(i * i for i in range(n))
    signal.signal(signal.SIGALRM, _timed_out)
    signal.alarm(TIMEOUT)
    try:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, \
                Client(cluster) as client:
            def run_once():
                t0 = time.perf_counter()
                futures = client.map(square, range(n), pure=False)
                total = sum(client.gather(futures))
                dt = time.perf_counter() - t0
                del futures
                assert total == expected, (total, expected)
                return n / dt

            values = measure(run_once)
    finally:
        signal.alarm(0)
    emit("dask_tiny", values, "tasks/s",
         {"n": n, "workers": workers, "threads_per_worker": 1, "processes": True,
          "submit": "client.map", "collect": "gather"})


if __name__ == "__main__":
    main()
