#!/usr/bin/env python3
"""redis_celery_tiny: Celery (Debian's python3-celery 5.2) with Redis as broker and result backend:
submit 10_000 tiny tasks (square.delay(i)), collect every result: the peer of the Redis-backed
task executor's benchmark.

The script starts its own Celery worker as a subprocess of /usr/bin/python3:
  python3 -m celery -A redis_celery_tiny worker --pool=prefork --concurrency=WORKERS
          --without-heartbeat --without-gossip --without-mingle -Q redis_celery_tiny --loglevel=WARNING
(cwd and PYTHONPATH are this directory, so the worker imports this very module and its app; the
Redis URL reaches it in the environment variable REDIS_CELERY_TINY_URL), and waits, at most 60 s,
until a square.delay(0) round trip through that worker succeeds.

Collection is what a Celery user typically writes for "submit many, collect all":
  results = [square.delay(i) for i in range(N)]
  total = sum(r.get() for r in results)
(each get() with a timeout, so that a dead worker fails the run instead of hanging it).

Configuration: Celery's defaults (json serializer, worker_prefetch_multiplier=4, acks before
execution, the Redis result backend's pub/sub result consumer), except what is needed to
run at all: broker_url and result_backend (both the URL given), and task_default_queue, a queue of
its own ("redis_celery_tiny") that the worker consumes with -Q, so that no other worker on the same
server picks up the tasks.  The worker's event heartbeat, gossip and mingle are off (flags above):
they only serve monitoring and the cluster's start-up synchronisation.

Timed region: the N delay() calls + the N get() calls, on an already-started worker that has run
the warm-up.  Value: tasks/s (N / elapsed), median of 3 repetitions after 1 warm-up of 1_000 tasks.
At the end, even on failure, the worker is stopped (SIGTERM, then SIGKILL to its process group
after 10 s) and the Redis DB of the URL is emptied with FLUSHDB: the bench's Redis server is its
own, and the run leaves a result key per task (celery-task-meta-*) besides the queue's keys.

Usage: /usr/bin/python3 redis_celery_tiny.py redis://127.0.0.1:PORT[/DB] [WORKERS]   (default 2)
"""
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

from celery import Celery

REPS = 3             # timed repetitions; the reported value is their median
WARMUP = 1           # untimed repetitions run first
WARMUP_N = 1_000     # tasks of the warm-up repetition
N = 10_000           # tasks of a timed repetition
QUEUE = "redis_celery_tiny"
URL_ENV = "REDIS_CELERY_TINY_URL"
START_TIMEOUT = 60   # s for the worker to answer its first task
RUN_TIMEOUT = 120    # s for one repetition's results

_url = os.environ.get(URL_ENV, "redis://127.0.0.1:6379/0")
app = Celery("redis_celery_tiny")
app.conf.update(broker_url=_url, result_backend=_url, task_default_queue=QUEUE)


@app.task(name="redis_celery_tiny.square")
def square(x):
    return x * x


def _r(x):
    return float(f"{x:.6g}")


def measure(run_once):
    for _ in range(WARMUP):
        run_once(WARMUP_N)
    return [run_once(N) for _ in range(REPS)]


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


def start_worker(url, workers):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, **{URL_ENV: url})
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = ["/usr/bin/python3", "-m", "celery", "-A", "redis_celery_tiny:app", "worker",
           "--pool=prefork", f"--concurrency={workers}", "--without-heartbeat",
           "--without-gossip", "--without-mingle", "-Q", QUEUE, "--loglevel=WARNING"]
    # Its own session (process group), so that a kill reaches the prefork children too; its
    # output goes to stderr, stdout carries only the JSON line.
    return subprocess.Popen(cmd, cwd=here, env=env, stdin=subprocess.DEVNULL,
                            stdout=sys.stderr, stderr=sys.stderr, start_new_session=True)


def wait_until_ready(worker):
    deadline = time.monotonic() + START_TIMEOUT
    probe = None
    while True:
        if worker.poll() is not None:
            sys.exit(f"redis_celery_tiny: the Celery worker exited with status {worker.returncode}"
                     " before answering its first task")
        try:
            if probe is None:
                probe = square.delay(0)
            probe.get(timeout=1)
            return
        except Exception as e:  # the broker not reachable (yet), or celery's TimeoutError
            if time.monotonic() > deadline:
                sys.exit(f"redis_celery_tiny: the Celery worker did not answer a task within "
                         f"{START_TIMEOUT} s (last error: {type(e).__name__}: {e})")
            if probe is None:
                time.sleep(0.5)


def stop_worker(worker):
    if worker.poll() is None:
        worker.terminate()  # warm shutdown: the pool's children finish and exit
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(worker.pid, signal.SIGKILL)  # whatever of its group is still there
    except ProcessLookupError:
        pass
    worker.wait(timeout=10)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: redis_celery_tiny.py redis://127.0.0.1:PORT[/DB] [WORKERS]")
    url = sys.argv[1]
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    os.environ[URL_ENV] = url
    app.conf.update(broker_url=url, result_backend=url)

    worker = start_worker(url, workers)
    try:
        wait_until_ready(worker)

        def run_once(n):
            expected = sum(i * i for i in range(n))
            t0 = time.perf_counter()
            deadline = time.monotonic() + RUN_TIMEOUT
            results = [square.delay(i) for i in range(n)]
            total = sum(r.get(timeout=max(1.0, deadline - time.monotonic())) for r in results)
            dt = time.perf_counter() - t0
            assert total == expected, (total, expected)
            return n / dt

        values = measure(run_once)
    finally:
        try:
            stop_worker(worker)
        finally:
            import redis
            try:
                redis.Redis.from_url(url, socket_timeout=10).flushdb()
            except redis.RedisError as e:
                print(f"redis_celery_tiny: FLUSHDB failed: {e}", file=sys.stderr)
    emit("redis_celery_tiny", values, "tasks/s",
         {"n": N, "workers": workers, "warmup_n": WARMUP_N, "pool": "prefork",
          "broker": "redis", "backend": "redis", "collect": "get_each"})


if __name__ == "__main__":
    main()
