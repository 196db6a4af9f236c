#!/usr/bin/env bash
# benches/wrk/ab_capacity.sh: the HTTP and binary capacity of two `cx`
# builds, one server core each, alternating build A and build B in every
# repeat, so that both see the same machine. Each repeat starts one server
# per build (`--workers 1`, pinned to core 0) and sweeps it over HTTP, then
# over the binary protocol's score_openrtb, with the same requests
# (`cx-bench load --sweep`, pinned to core 1).
#
# Usage (after building both; build A in its own checkout and target dir):
#   CX_A=/tmp/base-target/release/cx CX_B=target/release/cx benches/wrk/ab_capacity.sh
#
# Settings (environment): CX_A, CX_B (the two builds), CX_BENCH
# (target/release/cx-bench), FILE (the prebid sample), REPEATS (5), START
# (20000 req/s; x1.15 and 2 s a step), PORT (18080; the binary listener
# PORT+1), OUT (a fresh temporary folder for the reports).
# Prints one line per sweep: repeat, build, wire, capacity (the highest rate
# any step achieved).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

FILE="${FILE:-components/wire/tests/fixtures/openrtb/prebid_sample.jsonl}"
CX_BENCH="${CX_BENCH:-target/release/cx-bench}"
REPEATS="${REPEATS:-5}"
START="${START:-20000}"
PORT="${PORT:-18080}"
OUT="${OUT:-$(mktemp -d /tmp/cx-ab-capacity.XXXXXX)}"
mkdir -p "$OUT"
declare -A CX=([A]="${CX_A:?set CX_A to build A}" [B]="${CX_B:?set CX_B to build B}")

echo "$(date -u); $(lscpu | sed -n 's/^Model name: *//p'); kernel $(uname -r); reports in $OUT"
for r in $(seq "$REPEATS"); do
  for build in A B; do
    taskset -c 0 "${CX[$build]}" serve --workers 1 --listen "127.0.0.1:$((PORT + 1))" \
      --admin-listen "" --http-listen "127.0.0.1:$PORT" >"$OUT/serve-$build.out" 2>"$OUT/serve-$build.err" &
    server=$!
    for _ in $(seq 100); do
      [[ -s "$OUT/serve-$build.out" ]] && break
      sleep 0.1
    done
    for wire in http binary; do
      if [[ "$wire" == http ]]; then
        flags=(--http --addr "127.0.0.1:$PORT")
      else
        flags=(--addr "127.0.0.1:$((PORT + 1))")
      fi
      report="$OUT/$build-$wire-$r.json"
      taskset -c 1 "$CX_BENCH" load "${flags[@]}" --mix "$FILE" --connections 4 --depth 64 \
        --sweep --start-rate "$START" --step-factor 1.15 --step-s 2 --max-rate 400000 \
        --stop-after-misses 100 --warmup-s 0.5 -q --json "$report" >/dev/null
      capacity=$(sed -n 's/.*"achieved_rate_per_s": *\([0-9.]*\).*/\1/p' "$report" | sort -g | tail -1)
      echo "repeat $r build $build $wire capacity $capacity"
    done
    kill -INT "$server"
    wait "$server" || true
  done
done
