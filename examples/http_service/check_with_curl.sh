#!/usr/bin/env bash
# Drives the http_service program with curl, as a user would: every route, bad input, the event loop
# answering while a CPU-heavy count runs in the process pool, and a graceful stop on SIGTERM.
# Usage: check_with_curl.sh <http_service executable>
set -euo pipefail
service=$1
dir=$(mktemp -d)
pid=
cleanup() {
  [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

failures=0
check() {  # check <what> <expected regex> <actual>
  if [[ "$3" =~ $2 ]]; then
    echo "ok: $1"
  else
    echo "FAILED: $1: expected /$2/, got: $3"
    failures=$((failures + 1))
  fi
}
check_that() {  # check_that <what> <command...>: the command must succeed
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; failures=$((failures + 1)); fi
}
get() { curl -sS --max-time 20 -w ' %{http_code}' "$@"; }

"$service" --port-file "$dir/port" >"$dir/output" 2>&1 &
pid=$!
for _ in $(seq 100); do
  [[ -s "$dir/port" ]] && break
  sleep 0.1
done
[[ -s "$dir/port" ]] || { echo "the service did not start:"; cat "$dir/output"; exit 1; }
base="http://127.0.0.1:$(cat "$dir/port")"

check "a count is computed in the pool" '^\{"below":100000,"primes":9592,"cached":false\}
 200$' "$(get "$base/primes?below=100000")"
check "the same count comes from the cache actor" '^\{"below":100000,"primes":9592,"cached":true\}
 200$' "$(get "$base/primes?below=100000")"
check "PUT stores JSON" '^\{"key":"colors","stored":true\}
 200$' "$(get -X PUT -H 'Content-Type: application/json' --data '{"list":["red","green"],"n":2}' "$base/cache/colors")"
check "GET returns it" '^\{"key":"colors","value":\{"list":\["red","green"\],"n":2\}\}
 200$' "$(get "$base/cache/colors")"
check "DELETE removes it" '"deleted":true\}
 200$' "$(get -X DELETE "$base/cache/colors")"
check "an unknown key is 404" '"error":"no such key"\}
 404$' "$(get "$base/cache/colors")"
check "a body that is not JSON is 400" '"error":"the body is not JSON: .*"\}
 400$' "$(get -X PUT --data '{"list": [1,' "$base/cache/broken")"
check "a bad count is 400" '"error":"give below=N .*"\}
 400$' "$(get "$base/primes?below=ten")"
check "a count out of range is 400" ' 400$' "$(get "$base/primes?below=1000000000")"
check "a wrong method is 405" ' 405$' "$(get -X POST "$base/primes?below=10")"
check "an unknown route is 404" '"error":"no such route"\}
 404$' "$(get "$base/nowhere")"
check "garbage instead of HTTP is 400" '400 Bad Request' \
  "$(printf 'this is not HTTP\r\n\r\n' | curl -sS --max-time 5 -i telnet://127.0.0.1:"$(cat "$dir/port")" 2>&1 || true)"

# A long count runs in the pool; meanwhile the loop answers at once.
get "$base/primes?below=5000000" >"$dir/long" &
long=$!
sleep 0.2
start=$(date +%s%N)
check "the loop answers while the pool counts" ' 200$' "$(get "$base/stats")"
took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_that "... before the count is done" kill -0 "$long"
check_that "... within a second (took $took_ms ms)" test "$took_ms" -lt 1000
wait "$long"
check "the long count" '^\{"below":5000000,"primes":348513,"cached":false\}
 200$' "$(cat "$dir/long")"
check "stats count requests and CPU jobs" '"cpu_jobs":2,.*"loop_lag_ms":\{"samples":[1-9]' "$(get "$base/stats")"

# Graceful stop: SIGTERM while a request is in flight; it is still answered, then the program exits 0.
get "$base/primes?below=2000000" >"$dir/in_flight" &
in_flight=$!
sleep 0.2
kill -TERM "$pid"
wait "$in_flight" || true
check "the request in flight at SIGTERM is answered" '"primes":148933,"cached":false\}
 200$' "$(cat "$dir/in_flight")"
status=0
wait "$pid" || status=$?
pid=
check "the service exits with 0" '^0$' "$status"
check "... after a graceful stop" 'stopped gracefully after [0-9]+ connections' "$(cat "$dir/output")"
check_that "no new connections after the stop" bash -c "! curl -sS --max-time 2 '$base/stats' >/dev/null 2>&1"

echo
cat "$dir/output"
((failures == 0)) || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
