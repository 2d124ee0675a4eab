#!/usr/bin/env python3
"""pykka_actor: a Pykka ThreadingActor (Debian's python3-pykka), the Python anchor for local actors
(the shared anchor 15, with the repetitions' samples kept for the spread).

Two JSON lines:
  actor_ask_rtt:  proxy.add(1).get() one at a time, 20_000 calls; value: microseconds per call
  actor_tell:     actor_ref.tell(msg) 200_000 times, then one ask; value: messages/s
Median of 5 repetitions after 1 warm-up. Run with Debian's /usr/bin/python3 (where pykka is installed).
"""
import json
import platform
import statistics
import time

import pykka


class Counter(pykka.ThreadingActor):
    def __init__(self):
        super().__init__()
        self.n = 0

    def add(self, k):
        self.n += k
        return self.n

    def on_receive(self, message):
        self.n += message
        return self.n


def _r(x):
    return float(f"{x:.6g}")


def emit(name, values, unit):
    print(json.dumps({"name": name, "value": _r(statistics.median(values)), "unit": unit,
                      "params": {"reps": len(values), "warmup": 1, "samples": [_r(v) for v in values],
                                 "pykka": pykka.__version__, "python": platform.python_version()}}),
          flush=True)


def main():
    ref = Counter.start()
    proxy = ref.proxy()
    rtt, tell = [], []
    for rep in range(6):
        n = 20_000
        t0 = time.perf_counter()
        for _ in range(n):
            proxy.add(1).get()
        dt = time.perf_counter() - t0
        m = 200_000
        t1 = time.perf_counter()
        for _ in range(m):
            ref.tell(1)
        ref.ask(0)
        dt2 = time.perf_counter() - t1
        if rep:
            rtt.append(dt / n * 1e6)
            tell.append(m / dt2)
    ref.stop()
    emit("actor_ask_rtt", rtt, "us/call")
    emit("actor_tell", tell, "msgs/s")


if __name__ == "__main__":
    main()
