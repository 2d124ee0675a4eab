#!/usr/bin/env python3
"""aiohttp_service: the HTTP service of examples/http_service written as a Python user would, with
aiohttp (Debian's python3-aiohttp) and a ProcessPoolExecutor: the peer that bench/http_bench.sh loads
with wrk beside cohort's.

  GET /primes?below=N   primes below N by trial division: from a dict when asked before, else counted
                        in the process pool (loop.run_in_executor) and then kept
  GET /stats            requests, CPU jobs and the loop lag (how late a 10 ms timer fires)

Usage: /usr/bin/python3 aiohttp_service.py PORT_FILE [WORKERS]   (serves on 127.0.0.1, a free port)
"""
import asyncio
import concurrent.futures
import os
import socket
import sys
import time

from aiohttp import web


def count_primes_below(below):
    count = 0
    for n in range(2, below):
        d = 2
        prime = True
        while d * d <= n:
            if n % d == 0:
                prime = False
                break
            d += 1
        count += prime
    return count


class Service:
    def __init__(self, pool):
        self.pool = pool
        self.cache = {}
        self.requests = 0
        self.cpu_jobs = 0
        self.lag_ms = []

    async def primes(self, request):
        self.requests += 1
        try:
            below = int(request.query.get("below", ""))
        except ValueError:
            below = 0
        if not 2 <= below <= 50_000_000:
            return web.json_response({"error": "give below=N with 2 <= N <= 50000000"}, status=400)
        key = f"primes/{below}"
        cached = key in self.cache
        if not cached:
            loop = asyncio.get_running_loop()
            self.cache[key] = await loop.run_in_executor(self.pool, count_primes_below, below)
            self.cpu_jobs += 1
        return web.json_response({"below": below, "primes": self.cache[key], "cached": cached})

    async def stats(self, request):
        lag = sorted(self.lag_ms[-6000:])
        at = lambda q: lag[int(q * (len(lag) - 1))] if lag else 0.0
        return web.json_response({"requests": self.requests, "cpu_jobs": self.cpu_jobs,
                                  "loop_lag_ms": {"samples": len(self.lag_ms), "p50": at(0.5), "p99": at(0.99),
                                                  "max": lag[-1] if lag else 0.0}})

    async def watch_loop_lag(self):
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.010)
            self.lag_ms.append(max(0.0, (time.monotonic() - start - 0.010) * 1000))


async def main(port_file, workers):
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        service = Service(pool)
        app = web.Application()
        app.router.add_get("/primes", service.primes)
        app.router.add_get("/stats", service.stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        site = web.SockSite(runner, listener)
        await site.start()
        with open(port_file + ".partial", "w") as f:
            f.write(f"{listener.getsockname()[1]}\n")
        os.rename(port_file + ".partial", port_file)
        watcher = asyncio.create_task(service.watch_loop_lag())
        try:
            await asyncio.Event().wait()  # until SIGTERM / SIGINT
        finally:
            watcher.cancel()
            await runner.cleanup()


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2))
    except (KeyboardInterrupt, SystemExit):
        pass
