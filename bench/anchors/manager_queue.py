#!/usr/bin/env python3
"""manager_queue_rtt and manager_connect: the master/worker of the "distributed processes" tutorial,
measured. A BaseManager serves two queues over TCP on loopback with an authkey; a worker process
connects and answers every number put in the task queue with itself plus one in the result queue.
  manager_queue_rtt: 2_000 put + get round trips one at a time; us each.
  manager_connect:   BaseManager(address, authkey).connect() and the queue's proxy, 10 times (each takes a
                     fifth of a second here); us each.
Two JSON lines; median of 5 repetitions after 1 warm-up; fork start method.
"""
import json
import multiprocessing as mp
import platform
import queue
import statistics
import time
from multiprocessing.managers import BaseManager

tasks = queue.Queue()
results = queue.Queue()


class QueueManager(BaseManager):
    pass


QueueManager.register("tasks", callable=lambda: tasks)
QueueManager.register("results", callable=lambda: results)


def _r(x):
    return float(f"{x:.6g}")


def emit(name, values, unit, params):
    print(json.dumps({"name": name, "value": _r(statistics.median(values)), "unit": unit,
                      "params": dict(params, reps=len(values), warmup=1, samples=[_r(v) for v in values],
                                     python=platform.python_version())}), flush=True)


def worker(address):
    m = QueueManager(address=address, authkey=b"bench")
    m.connect()
    t, r = m.tasks(), m.results()
    while True:
        n = t.get()
        if n < 0:
            return
        r.put(n + 1)


def main():
    mp.set_start_method("fork")
    master = QueueManager(address=("127.0.0.1", 0), authkey=b"bench")
    master.start()
    t, r = master.tasks(), master.results()
    p = mp.Process(target=worker, args=(master.address,))
    p.start()
    trips, values = 2_000, []
    for rep in range(6):
        t0 = time.perf_counter()
        for i in range(trips):
            t.put(i)
            assert r.get() == i + 1
        if rep:
            values.append((time.perf_counter() - t0) / trips * 1e6)
    t.put(-1)
    p.join()
    emit("manager_queue_rtt", values, "us/round trip", {"round_trips": trips})

    connects, values = 10, []
    for rep in range(6):
        t0 = time.perf_counter()
        for _ in range(connects):
            c = QueueManager(address=master.address, authkey=b"bench")
            c.connect()
            c.tasks()
        if rep:
            values.append((time.perf_counter() - t0) / connects * 1e6)
    emit("manager_connect", values, "us/connect", {"connects": connects})
    master.shutdown()


if __name__ == "__main__":
    main()
