#!/usr/bin/env bash
# The Redis workloads, all against one redis-server of their own (loopback, a free port, no persistence,
# stopped at the end however the script ends): redis-benchmark's PING round trip (the broker's own
# limit), cohort's redis_bench, then the Python peers, Celery and Dask. One JSON line per value.
# Usage: bench/redis_bench.sh <build dir>   (after building its redis_bench target)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$1
dir=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done
url=redis://127.0.0.1:$port

# One client, one PING at a time: its average latency is the round trip a task cannot beat.
redis-benchmark -p "$port" -t ping -n 50000 -c 1 --csv 2>/dev/null |
  awk -F'"' '$2 == "PING_MBULK" { printf "{\"name\": \"redis_benchmark_ping_rtt\", \"value\": %g, \"unit\": \"us/round trip\", \"params\": {\"clients\": 1, \"requests\": 50000}}\n", $6 * 1000 }'
"$build/bench/redis_bench" "$url"
/usr/bin/python3 "$here/anchors/redis_celery_tiny.py" "$url" 2
/usr/bin/python3 "$here/anchors/dask_tiny.py" 2
