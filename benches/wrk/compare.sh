#!/usr/bin/env bash
# benches/wrk/compare.sh: the HTTP bidder of one `cx serve` under
# `cx-bench load --http` (open loop) and under wrk (closed loop), in one run
# on one machine; optionally (CAPACITY=1) also its capacity over HTTP against
# the binary protocol's score_openrtb with the same requests, and both at
# half the HTTP capacity.
#
# Usage, from anywhere (after `cargo build --release -p cx-server -p cx-benches`):
#   benches/wrk/compare.sh                       # the wrk comparison, ~35 s
#   CAPACITY=1 REPEATS=3 DURATION=5 benches/wrk/compare.sh  # plus capacity and half load, ~5 min
#
# Settings (environment):
#   FILE            bid requests, JSONL or one document (prebid sample)
#   RATE            cx-bench's fixed rate, req/s (20000)
#   DURATION        seconds of each measured run (10)
#   CONNECTIONS     cx-bench connections (4); DEPTH its pipeline depth (64)
#   WRK_CONNECTIONS wrk's connections, -c (64)
#   PORT            the HTTP bidder's port (18080); the binary listener PORT+1
#   CAPACITY        1: the capacity and half-load phases as well (0)
#   START_RATE, STEP_FACTOR, STEP_S, MAX_RATE
#                   the capacity sweeps: from 30000 req/s, x1.15 a step, 2 s a
#                   step, at most 400000; each goes on until the server no
#                   longer keeps up (achieved < 90% of offered), and the
#                   highest rate any step achieved is the capacity
#   REPEATS         repeats of each sweep and half-load run, alternating (3)
#   OUT             folder for every report (a fresh temporary one)
#   CX, CX_BENCH    the binaries (target/release/cx, target/release/cx-bench)
#
# Threads: with 2 or more cores, the server (--workers 1) is pinned to core 0
# and every load generator (cx-bench, wrk) to core 1; otherwise unpinned.
#
# Reading the results: wrk is closed loop (a connection sends its next
# request when the last answer came back), so its latencies leave out the
# wait a request would have had behind a slow one, and its rate is whatever
# the server allows. Compare wrk's requests/s with the HTTP capacity, and
# cx-bench's latency at wrk's own achieved rate (the last run) with care: at
# that rate the open-loop generator keeps offering load through every stall,
# so its tail measures the queue wrk never builds. docs/BENCHMARKS.md,
# "HTTP bidder (issue 14)", has a run and how to read it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

FILE="${FILE:-components/wire/tests/fixtures/openrtb/prebid_sample.jsonl}"
RATE="${RATE:-20000}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-4}"
DEPTH="${DEPTH:-64}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-64}"
PORT="${PORT:-18080}"
CAPACITY="${CAPACITY:-0}"
START_RATE="${START_RATE:-30000}"
STEP_FACTOR="${STEP_FACTOR:-1.15}"
STEP_S="${STEP_S:-2}"
MAX_RATE="${MAX_RATE:-400000}"
REPEATS="${REPEATS:-3}"
CX="${CX:-target/release/cx}"
CX_BENCH="${CX_BENCH:-target/release/cx-bench}"
OUT="${OUT:-$(mktemp -d /tmp/cx-http-compare.XXXXXX)}"
mkdir -p "$OUT"

for bin in "$CX" "$CX_BENCH"; do
  if [[ ! -x "$bin" ]]; then
    echo "compare.sh: $bin is missing: cargo build --release -p cx-server -p cx-benches" >&2
    exit 2
  fi
done
if ! command -v wrk >/dev/null; then
  echo "compare.sh: wrk is not installed (Debian: sudo apt-get install -y wrk)" >&2
  exit 2
fi

server_pin=()
load_pin=()
if [[ "$(nproc)" -ge 2 ]] && command -v taskset >/dev/null; then
  server_pin=(taskset -c 0)
  load_pin=(taskset -c 1)
fi

echo "== machine"
date -u
lscpu | sed -n 's/^Model name: *//p'
echo "kernel $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "server: ${server_pin[*]:-unpinned} $CX serve --workers 1; load: ${load_pin[*]:-unpinned}"
echo "requests: $FILE; reports in $OUT"

"${server_pin[@]}" "$CX" serve --workers 1 --listen "127.0.0.1:$((PORT + 1))" --admin-listen "" \
  --http-listen "127.0.0.1:$PORT" >"$OUT/serve.out" 2>"$OUT/serve.err" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [[ -s "$OUT/serve.out" ]] && break
  kill -0 "$server" 2>/dev/null || { cat "$OUT/serve.err" >&2; exit 1; }
  sleep 0.1
done
echo "server: $(head -1 "$OUT/serve.out")"

# cx-bench load against the running server: NAME WIRE RATE [flags...]
load() {
  local name="$1" wire="$2" rate="$3"
  shift 3
  local addr="127.0.0.1:$((PORT + 1))" flags=()
  if [[ "$wire" == http ]]; then
    addr="127.0.0.1:$PORT"
    flags=(--http)
  fi
  echo "-- cx-bench load ${flags[*]} --rate $rate $* ($name)"
  "${load_pin[@]}" "$CX_BENCH" load "${flags[@]}" --addr "$addr" --mix "$FILE" --rate "$rate" \
    --duration-s "$DURATION" --connections "$CONNECTIONS" --depth "$DEPTH" -q \
    --json "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}

# The highest achieved rate in a report or sweep, req/s.
achieved() {
  sed -n 's/.*"achieved_rate_per_s": *\([0-9.]*\).*/\1/p' "$OUT/$1.json" | sort -g | tail -1
}

# The median of the numbers on standard input.
median() {
  sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

if [[ "$CAPACITY" == 1 ]]; then
  echo "== capacity: sweeps from $START_RATE req/s (x$STEP_FACTOR, ${STEP_S} s a step), HTTP and binary alternating"
  http_caps=()
  ratios=()
  for r in $(seq "$REPEATS"); do
    sweep=(--sweep --start-rate "$START_RATE" --step-factor "$STEP_FACTOR" --step-s "$STEP_S"
      --max-rate "$MAX_RATE" --stop-after-misses 100 --warmup-s 0.5)
    load "cap-http-$r" http "$START_RATE" "${sweep[@]}"
    load "cap-binary-$r" binary "$START_RATE" "${sweep[@]}"
    h=$(achieved "cap-http-$r")
    b=$(achieved "cap-binary-$r")
    http_caps+=("$h")
    ratios+=("$(awk -v h="$h" -v b="$b" 'BEGIN { printf "%.3f", h / b }')")
    echo "repeat $r: capacity HTTP ${h}/s, binary ${b}/s, HTTP/binary ${ratios[-1]}"
    for rate in "$h" "$b"; do
      if awk -v a="$rate" -v m="$MAX_RATE" 'BEGIN { exit !(a >= 0.9 * m) }'; then
        echo "  (a sweep kept up with MAX_RATE $MAX_RATE: its capacity is higher than it says)"
      fi
    done
  done
  echo "HTTP/binary capacity, median of the repeats: $(printf '%s\n' "${ratios[@]}" | median)" \
    "(${ratios[*]})"
  median=$(printf '%s\n' "${http_caps[@]}" | median)
  half=$(awk -v m="$median" 'BEGIN { printf "%.0f", m / 2 }')
  echo "== half the median HTTP capacity ($median/s): $half req/s, HTTP and binary alternating"
  for r in $(seq "$REPEATS"); do
    load "half-http-$r" http "$half"
    load "half-binary-$r" binary "$half"
  done
fi

echo "== cx-bench load --http at a fixed $RATE req/s (open loop)"
load fixed-http http "$RATE"

echo "== wrk -t1 -c$WRK_CONNECTIONS -d${DURATION}s (closed loop)"
"${load_pin[@]}" wrk -t1 -c"$WRK_CONNECTIONS" -d"${DURATION}s" --latency -s benches/wrk/post_bid.lua \
  "http://127.0.0.1:$PORT/openrtb2/bid" -- "$FILE" 2>&1 | tee "$OUT/wrk.txt"
wrk_rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$OUT/wrk.txt" | cut -d. -f1)
if [[ -z "$wrk_rate" || "$wrk_rate" -le 0 ]]; then
  echo "compare.sh: wrk reported no rate" >&2
  exit 1
fi

echo "== cx-bench load --http at wrk's achieved rate, $wrk_rate req/s (open loop)"
load at-wrk-rate http "$wrk_rate"

echo "== summary"
echo "wrk (closed loop, $WRK_CONNECTIONS connections): $(grep '^wrk summary' "$OUT/wrk.txt" || true)"
for name in fixed-http at-wrk-rate; do
  echo "cx-bench $name: $(head -1 "$OUT/$name.txt")"
  grep '^latency ok' "$OUT/$name.txt" || true
done
echo "wrk's latencies are closed loop and not comparable with cx-bench's open-loop ones at the same"
echo "rate: wrk waits for each answer before sending, so a stall delays one request per connection,"
echo "where the open-loop schedule keeps every request due during it (docs/BENCHMARKS.md)."
