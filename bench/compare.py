#!/usr/bin/env python3
"""Prints the same-run comparison of cohort with its peers, as a Markdown table.

Usage: compare.py cohort.json python.jsonl [cohort_drivers.jsonl [redis.jsonl]]
cohort.json is Google Benchmark's --benchmark_out (JSON); python.jsonl holds the anchors' JSON lines;
cohort_drivers.jsonl holds the lines of cohort's standalone drivers (same format as the anchors, names
prefixed "cohort_"); redis.jsonl holds bench/redis_bench.sh's lines, cohort's and its peers'.
Every ratio is a speedup: how many times faster cohort is than the peer (> 1: cohort is faster), so
only numbers from the same run are ever divided by each other.
"""
import json
import os
import platform
import re
import sys
import time

# A ratio target is met when speedup >= min_speedup; an absolute one when cohort's value <= max_value.
TPE_VS_PYTHON_MIN = 30.0
TPE_VS_ASIO_MIN = 1 / 1.5
ROUND_TRIP_MAX_US = 10.0
ROUND_TRIP_TAIL_MAX = 10.0
GATHER_VS_PYTHON_MIN = 30.0
ACTOR_VS_PYKKA_MIN = 100.0
ACTOR_VS_CAF_MIN = 1.0
PROCESS_ACTOR_VS_MANAGER_MIN = 50.0
MANAGER_VS_PYTHON_MIN = 20.0
HTTP_VS_AIOHTTP_MIN = 10.0
REDIS_VS_PEERS_MIN = 20.0
IDLE_ACTOR_MAX_BYTES = 1024


def run_key(run_name):
    """'tpe_submit_cohort/min_time:0.300/repeats:5/real_time' -> 'tpe_submit_cohort'; keeps 'workers:N'."""
    parts = [p for p in run_name.split("/")
             if not re.match(r"(min_time|repeats|iterations|real_time|manual_time|threads)\b", p)]
    return "/".join(parts)


def quantile(sorted_values, q):
    """Linear interpolation between the closest ranks, as the drivers' quantile() does."""
    at = q * (len(sorted_values) - 1)
    below = int(at)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * (at - below)


def spread_pct(values):
    """The interquartile range as a percentage of the median: how far repetitions of one run disagree."""
    values = sorted(values)
    if len(values) < 2:
        return None
    median = quantile(values, 0.5)
    return 100 * (quantile(values, 0.75) - quantile(values, 0.25)) / median if median else None


def load_cohort(path):
    """Google Benchmark's medians by run key, each with the repetitions' values by field (for spreads)."""
    with open(path) as f:
        doc = json.load(f)
    medians, repetitions = {}, {}
    for b in doc["benchmarks"]:
        if b.get("error_occurred"):
            raise SystemExit(f"{b['name']} failed: {b.get('error_message')}")
        key = run_key(b["run_name"])
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median":
            medians[key] = b
        elif b.get("run_type") == "iteration":
            repetitions.setdefault(key, []).append(b)
    for key, b in medians.items():
        b["repetitions"] = repetitions.get(key, [])
    return doc["context"], medians


def load_python(path):
    with open(path) as f:
        return {rec["name"]: rec for rec in map(json.loads, filter(str.strip, f))}


def fmt(x, unit=""):
    if x is None:
        return "n/a"
    text = f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"
    return f"{text} {unit}".strip()


def main():
    context, cpp = load_cohort(sys.argv[1])
    py = load_python(sys.argv[2])
    drivers = load_python(sys.argv[3]) if len(sys.argv) > 3 else {}
    redis = load_python(sys.argv[4]) if len(sys.argv) > 4 else {}
    rows = []

    # Every value below is a (median, spread) pair; the spread is None where it is not known.
    def cpp_value(key, field):
        b = cpp.get(key)
        if b is None:
            return None
        return float(b[field]), spread_pct([float(r[field]) for r in b["repetitions"] if field in r])

    def record_value(rec):
        if rec is None:
            return None
        params = rec.get("params", {})
        spread = params.get("spread_pct")
        if spread is None and params.get("samples"):
            spread = spread_pct(params["samples"])
        return float(rec["value"]), spread

    def py_value(name):
        return record_value(py.get(name))

    def with_spread(value, unit):
        if value is None:
            return "n/a"
        median, spread = value
        return fmt(median, unit) + ("" if spread is None else f" ±{spread:.0f}%")

    def add(what, cohort, unit, peer, peer_value, higher_is_better, target=None, met=None):
        speedup = None
        cohort_median = None if cohort is None else cohort[0]
        if cohort and peer_value and cohort[0] and peer_value[0]:
            speedup = cohort[0] / peer_value[0] if higher_is_better else peer_value[0] / cohort[0]
        verdict = "" if met is None else ("met" if met(cohort_median, speedup) else "**missed**")
        rows.append((what, with_spread(cohort, unit), peer, with_spread(peer_value, unit),
                     fmt(speedup) + "x" if speedup else "n/a", target or "", verdict))

    at_least = lambda minimum: (lambda value, speedup: speedup is not None and speedup >= minimum)
    at_most = lambda maximum: (lambda value, speedup: value is not None and value <= maximum)

    ns = "ns"
    add("Future create/set/get", cpp_value("future_set_get_cohort", "real_time"), ns,
        "std::promise/std::future", cpp_value("future_set_get_std", "real_time"), False)

    tpe = cpp_value("tpe_submit_cohort", "tasks_per_s")
    add("ThreadPoolExecutor(2) submit 100k, get each", tpe, "tasks/s", "asio::thread_pool(2) + std::promise",
        cpp_value("tpe_submit_asio", "tasks_per_s"), True, ">= 0.67x (within 1.5x)", at_least(TPE_VS_ASIO_MIN))
    add("ThreadPoolExecutor(2) submit 100k, get each", tpe, "tasks/s", "Python concurrent.futures (anchor 06)",
        py_value("tpe_submit"), True, ">= 30x", at_least(TPE_VS_PYTHON_MIN))

    for workers in (1, 2):
        rt = cpp_value(f"run_in_executor_round_trip_cohort/workers:{workers}", "p50_us")
        what = f"co_await run_in_executor round trip, median, {workers} worker(s)"
        add(what, rt, "us", "raw Asio coroutine + asio::thread_pool",
            cpp_value(f"run_in_executor_round_trip_asio/workers:{workers}", "p50_us"), False,
            "< 10 us", at_most(ROUND_TRIP_MAX_US))
        if workers == 2:
            add(what, rt, "us", "Python asyncio run_in_executor", py_value("asyncio_round_trip"), False)
        # The tail: p90 over p50 within one repetition, the median of those ratios over repetitions.
        b = cpp.get(f"run_in_executor_round_trip_cohort/workers:{workers}")
        if b is not None:
            ratios = [float(r["p90_us"]) / float(r["p50_us"]) for r in b["repetitions"] if r.get("p50_us")]
            tail = (sorted(ratios)[len(ratios) // 2], spread_pct(ratios)) if ratios else None
            add(f"co_await run_in_executor round trip, p90 / p50, {workers} worker(s)", tail, "", "", None, False,
                f"< {ROUND_TRIP_TAIL_MAX:.0f}", at_most(ROUND_TRIP_TAIL_MAX))

    gather = cpp_value("run_in_executor_gather_cohort", "tasks_per_s")
    add("gather of 50k run_in_executor, 2 workers", gather, "tasks/s", "Python asyncio (anchor 13, thread)",
        py_value("asyncio_run_in_executor_thread"), True, f">= {GATHER_VS_PYTHON_MIN:.0f}x",
        at_least(GATHER_VS_PYTHON_MIN))
    add("gather of 50k run_in_executor, 2 workers", gather, "tasks/s",
        "bare Asio: co_spawn per call + asio::thread_pool", cpp_value("run_in_executor_gather_asio", "tasks_per_s"), True)

    for workers in (1, 2):
        add(f"thread: submit(fn).get() round trip, median, {workers} worker(s)",
            cpp_value(f"submit_get_round_trip_cohort/workers:{workers}", "p50_us"), "us",
            "asio::post + std::promise", cpp_value(f"submit_get_round_trip_asio/workers:{workers}", "p50_us"), False)

    def driver_value(name):
        return record_value(drivers.get("cohort_" + name))

    # The multiprocessing workloads: (anchor name, description, unit, higher is better, minimum speedup).
    for name, what, unit, higher, minimum in (
            ("queue_small", "Queue: 200k small ints, producer -> consumer process", "msgs/s", True, 30),
            ("queue_1mb", "Queue: 500 x 1 MiB, producer -> consumer process", "MB/s", True, 3),
            ("pipe_pingpong", "Pipe round trip, parent <-> child", "us", False, 5),
            ("spawn_join_fork", "start + join a no-op Process, fork", "ms", False, 5),
            ("spawn_join_spawn", "start + join a no-op Process, spawn", "ms", False, 5),
            ("spawn_join_forkserver", "start + join a no-op Process, forkserver", "ms", False, 5),
            ("value_lock_incr", "Value += 1 under get_lock(), 2 processes", "increments/s", True, 10),
            ("pool_map_tiny", "Pool(2).map of 200k tiny tasks, default chunksize", "tasks/s", True, 30),
            ("pool_map_chunk1", "Pool(2).map of 20k tiny tasks, chunksize=1", "tasks/s", True, 30),
            ("ppe_submit", "ProcessPoolExecutor(2): submit 20k tiny tasks + as_completed", "tasks/s", True, 50),
            ("ppe_map", "ProcessPoolExecutor(2).map of 200k tiny tasks, chunksize=1000", "tasks/s", True, None),
            ("apply_latency", "Pool(1).apply round trip, median", "us", False, 10)):
        target = None if minimum is None else (f">= {minimum}x" if higher else f"<= 1/{minimum}")
        add(what, driver_value(name), unit, f"Python multiprocessing ({name})", py_value(name), higher, target,
            None if minimum is None else at_least(minimum))

    # Local actors: cohort's driver, CAF's (same file, names "caf_...") and Pykka's anchor.
    def caf_value(name):
        return record_value(drivers.get("caf_" + name))

    for name, what, unit, higher in (
            ("actor_ask_rtt", "actor ask round trip, from a coroutine on the actor's loop", "us", False),
            ("actor_tell", "actor tell x 200k, then one ask, on the actor's loop", "msgs/s", True)):
        add(what, driver_value(name), unit, "Pykka ThreadingActor (anchor 15)", py_value(name), higher,
            f">= {ACTOR_VS_PYKKA_MIN:.0f}x", at_least(ACTOR_VS_PYKKA_MIN))
        add(what, driver_value(name), unit, "CAF 0.17 (request/receive, anon_send) from a scoped_actor",
            caf_value(name), higher, "ahead (> 1x)", at_least(ACTOR_VS_CAF_MIN))
        add(what.replace("from a coroutine on the actor's loop", "call().get() from another thread")
            .replace("on the actor's loop", "from another thread"),
            driver_value(name + "_thread"), unit, "Pykka ThreadingActor (anchor 15)", py_value(name), higher)

    add("process actor: ask round trip x 10k, fork", driver_value("process_actor_call"), "calls/s",
        "Python BaseManager-hosted object (anchor 16)", py_value("process_actor_call"), True,
        f">= {PROCESS_ACTOR_VS_MANAGER_MIN:.0f}x", at_least(PROCESS_ACTOR_VS_MANAGER_MIN))
    # The floor under it: one coroutine awaiting another's answer in a second process over a Pipe, each
    # on its loop, with no actor at all (round trips per second, so that it reads against the same peer).
    floor = driver_value("pipe_pingpong_async")
    add("  the same exchange without an actor: coroutine <-> coroutine over a Pipe, one loop each",
        None if floor is None else (1e6 / floor[0], floor[1]), "calls/s",
        "Python BaseManager-hosted object (anchor 16)", py_value("process_actor_call"), True)

    # Managers: a dict from a child process, the master/worker queue round trip over TCP, a connection.
    add("Manager dict: set + get from a child process x 5k", driver_value("manager_dict_ops"), "ops/s",
        "Python Manager().dict() (anchor 12)", py_value("manager_dict_ops"), True,
        f">= {MANAGER_VS_PYTHON_MIN:.0f}x", at_least(MANAGER_VS_PYTHON_MIN))
    add("BaseManager queues over TCP: put, a worker answers, get x 2k", driver_value("manager_queue_rtt"),
        "us", "Python BaseManager queues, same workload", py_value("manager_queue_rtt"), False,
        f">= {MANAGER_VS_PYTHON_MIN:.0f}x", at_least(MANAGER_VS_PYTHON_MIN))
    add("BaseManager connect + HMAC handshake + a proxy, TCP", driver_value("manager_connect"), "us",
        "Python BaseManager.connect()", py_value("manager_connect"), False)

    # Savina (ping-pong, thread ring, counting actor) and a million idle actors, beside CAF.
    for name, what, unit, higher, target, met in (
            ("savina_ping_pong", "Savina ping-pong, 40k round trips", "msgs/s", True, "ahead (> 1x)",
             at_least(ACTOR_VS_CAF_MIN)),
            ("savina_thread_ring", "Savina thread ring, 100 actors, 100k hops", "hops/s", True, "ahead (> 1x)",
             at_least(ACTOR_VS_CAF_MIN)),
            ("savina_counting", "Savina counting actor, 1M messages", "msgs/s", True, "ahead (> 1x)",
             at_least(ACTOR_VS_CAF_MIN)),
            ("idle_actors_spawn", "1,000,000 idle actors: spawn", "us/actor", False, None, None),
            ("idle_actors_bytes", "1,000,000 idle actors: resident memory", "bytes/actor", False,
             f"< {IDLE_ACTOR_MAX_BYTES} bytes", lambda value, speedup: value is not None and value < IDLE_ACTOR_MAX_BYTES)):
        add(what, driver_value(name), unit, "CAF 0.17, default scheduler", caf_value(name), higher, target, met)

    # The HTTP service under wrk (bench/http_bench.sh), cohort's beside the same service in aiohttp.
    add("HTTP service: GET of a cached count, wrk -c64", driver_value("http_cached"), "req/s",
        "aiohttp + ProcessPoolExecutor", py_value("http_cached"), True, f">= {HTTP_VS_AIOHTTP_MIN:.0f}x",
        at_least(HTTP_VS_AIOHTTP_MIN))
    # The machine's ceiling for that GET: a bare epoll server that sends the same bytes and does nothing else.
    add("  the same GET from a bare epoll server with a fixed reply (this machine's ceiling)",
        record_value(drivers.get("ceiling_http_cached")), "req/s", "aiohttp + ProcessPoolExecutor",
        py_value("http_cached"), True)
    add("HTTP service: that GET's p99 latency", driver_value("http_cached_p99"), "ms",
        "aiohttp + ProcessPoolExecutor", py_value("http_cached_p99"), False)
    add("HTTP service: loop lag p99 while CPU-heavy requests run in the pool", driver_value("http_lag_under_cpu"),
        "ms", "aiohttp + ProcessPoolExecutor", py_value("http_lag_under_cpu"), False)

    # The Redis workloads (bench/redis_bench.sh): cohort and its peers on one redis-server.
    def redis_value(name):
        return record_value(redis.get(name))

    for peer, name in (("Celery, Redis broker and backend", "redis_celery_tiny"), ("Dask distributed, LocalCluster", "dask_tiny")):
        add("Redis: 10,000 tiny tasks submitted, every result taken, 2 worker processes",
            redis_value("cohort_redis_tiny_tasks"), "tasks/s", peer, redis_value(name), True,
            f">= {REDIS_VS_PEERS_MIN:.0f}x", at_least(REDIS_VS_PEERS_MIN))
    add("Redis: one task's round trip, submit(fn, x).get()", redis_value("cohort_redis_task_rtt"), "us",
        "redis-benchmark PING, 1 client (the broker's round trip)", redis_value("redis_benchmark_ping_rtt"), False)
    add("Redis: PING round trip on the executor's Asio connection", redis_value("cohort_redis_ping_rtt_asio"), "us",
        "hiredis' blocking API", redis_value("cohort_redis_ping_rtt_hiredis_sync"), False)
    add("Redis: 10,000 pipelined XADDs on the executor's Asio connection",
        redis_value("cohort_redis_xadd_pipelined_asio"), "ops/s", "hiredis' blocking API",
        redis_value("cohort_redis_xadd_pipelined_hiredis_sync"), True)

    million = drivers.get("cohort_million_futures")
    if million:
        peak = (float(million["value"]), None)
        add("ProcessPoolExecutor(2): 1,000,000 tiny futures at once, peak RSS", peak, "MB", "", None, False,
            "< 300 MB", lambda value, speedup: value is not None and value < 300)

    python_version = next(iter(py.values()))["params"]["python"] if py else "n/a"
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {context.get('num_cpus')} CPUs at "
          f"{context.get('mhz_per_cpu')} MHz, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{platform.platform()}, Python {python_version}.")
    print("cohort and peer values are medians over repetitions of the same run, ± the spread of those "
          "repetitions (interquartile range / median); speedup > 1 means cohort is faster.\n")
    header = ("workload", "cohort", "peer", "peer value", "speedup", "target", "")
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---|---:|---:|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
