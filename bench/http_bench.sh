#!/usr/bin/env bash
# The HTTP service under wrk: cohort's (examples/http_service) or the same service in aiohttp
# (anchors/aiohttp_service.py), one at a time on loopback, printed as JSON lines for compare.py:
#   http_cached            requests/s of GET /primes?below=100000 (a cache hit), wrk -t1 -c64, median of 3
#   http_cached_p99        its p99 latency, ms
#   http_lag_under_cpu     the service's loop lag p99 (ms) while wrk sends cached requests on 32
#                          connections and CPU-heavy ones (new counts, for the process pool) on 4
# Usage: bench/http_bench.sh cohort <http_service executable> | bench/http_bench.sh aiohttp
#        bench/http_bench.sh ceiling <http_ceiling_server executable>: the cached GET alone, from a bare
#        epoll server that sends the same reply (the most any server can do here; "ceiling_http_cached")
# (cohort's names are prefixed "cohort_", as the other drivers' are).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
impl=$1
seconds=${HTTP_BENCH_SECONDS:-5}
dir=$(mktemp -d)
pid=
cleanup() {
  [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

start_service() {
  rm -f "$dir/port"
  case "$impl" in
    cohort) "$service" --workers 2 --port-file "$dir/port" >"$dir/log" 2>&1 & ;;
    # aiohttp is Debian's package, installed for Debian's Python.
    aiohttp) /usr/bin/python3 "$here/anchors/aiohttp_service.py" "$dir/port" 2 >"$dir/log" 2>&1 & ;;
    ceiling) "$service" "$dir/port" >"$dir/log" 2>&1 & ;;
  esac
  pid=$!
  for _ in $(seq 100); do [[ -s "$dir/port" ]] && break; sleep 0.1; done
  [[ -s "$dir/port" ]] || { echo "http_bench: the $impl service did not start:" >&2; cat "$dir/log" >&2; exit 1; }
  base="http://127.0.0.1:$(cat "$dir/port")"
  curl -sS --max-time 60 "$base/primes?below=100000" >/dev/null  # fills the cache
}
stop_service() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
}

case "$impl" in
  cohort) service=$2 prefix=cohort_ ;;
  aiohttp) prefix= ;;
  ceiling) service=$2 prefix=ceiling_ ;;
  *) echo "usage: http_bench.sh cohort <http_service> | aiohttp | ceiling <http_ceiling_server>" >&2; exit 2 ;;
esac

# wrk's "Requests/sec" and its 99% latency in ms, from its --latency report.
requests_per_s() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
p99_ms() {
  awk '$1 == "99%" { v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v);
                     print (unit == "us" ? v / 1000 : unit == "s" ? v * 1000 : v) }' "$1"
}

start_service
rps=() p99=()
for run in 1 2 3; do
  wrk -t1 -c64 -d"${seconds}s" --latency "$base/primes?below=100000" >"$dir/wrk_$run"
  rps+=("$(requests_per_s "$dir/wrk_$run")")
  p99+=("$(p99_ms "$dir/wrk_$run")")
done

stop_service

if [[ "$impl" == ceiling ]]; then
  /usr/bin/python3 - "$prefix" "$impl" "${rps[*]}" "${p99[*]}" <<'EOF'
import json, platform, statistics, sys
prefix, impl, rps, p99 = sys.argv[1:]
rps, p99 = [float(x) for x in rps.split()], [float(x) for x in p99.split()]
params = {"impl": impl, "python": platform.python_version()}
print(json.dumps({"name": prefix + "http_cached", "value": statistics.median(rps),
                  "params": {**params, "samples": rps, "connections": 64}}))
print(json.dumps({"name": prefix + "http_cached_p99", "value": statistics.median(p99),
                  "params": {**params, "samples": p99}}))
EOF
  exit 0
fi

# A service started anew, so that its loop lag is that of this part alone.
start_service
cat >"$dir/cpu.lua" <<'EOF'
-- A count no request asked for before, so every one is a job for the process pool.
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/primes?below=" .. (200000 + counter * 7 + math.random(0, 6)))
end
EOF
wrk -t1 -c4 -d"${seconds}s" -s "$dir/cpu.lua" "$base" >"$dir/wrk_cpu" &
cpu=$!
wrk -t1 -c32 -d"${seconds}s" --latency "$base/primes?below=100000" >"$dir/wrk_mixed"
wait "$cpu"
stats=$(curl -sS --max-time 10 "$base/stats")
stop_service

/usr/bin/python3 - "$prefix" "$impl" "$stats" "${rps[*]}" "${p99[*]}" "$(requests_per_s "$dir/wrk_mixed")" \
  "$(requests_per_s "$dir/wrk_cpu")" <<'EOF'
import json, platform, statistics, sys
prefix, impl, stats, rps, p99, mixed_rps, cpu_rps = sys.argv[1:]
rps, p99 = [float(x) for x in rps.split()], [float(x) for x in p99.split()]
lag = json.loads(stats)["loop_lag_ms"]
common = {"impl": impl, "python": platform.python_version()}
def emit(name, value, **params):
    print(json.dumps({"name": prefix + name, "value": value, "params": {**common, **params}}))
emit("http_cached", statistics.median(rps), samples=rps, connections=64)
emit("http_cached_p99", statistics.median(p99), samples=p99)
emit("http_lag_under_cpu", lag["p99"], max_ms=lag["max"], cached_rps=float(mixed_rps), cpu_rps=float(cpu_rps),
     cpu_jobs=json.loads(stats)["cpu_jobs"])
EOF
