#!/usr/bin/env bash
# The SIMD kernel against ONNX Runtime on the same network, same inputs,
# same core, back to back (issue 13, goal 6): ROUNDS rounds, each one
# `cx-bench kernel` run then one ONNX Runtime run, so that host noise falls
# on both alike. Prints the ratio (ONNX Runtime µs/sample over SIMD
# µs/sample) per batch and round, and its median over the rounds.
#
#   benches/onnx/compare.sh [--quick]
#
# Environment: PYTHON (default /tmp/ortvenv/bin/python; a venv with
# onnxruntime onnx numpy safetensors), CX_BENCH (a built cx-bench; default:
# build it, release), CORE (the core to pin both to; default the last one),
# SHAPE (default 256x512x64), BATCHES (default 1,64), ROUNDS (default 3),
# OUT (default a temporary directory).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/tmp/ortvenv/bin/python}
SHAPE=${SHAPE:-256x512x64}
BATCHES=${BATCHES:-1,64}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$(mktemp -d)}
REPEATS=7
REPEAT_MS=150
if [[ "${1:-}" == "--quick" ]]; then REPEATS=3; REPEAT_MS=30; fi
if [[ -z "${CX_BENCH:-}" ]]; then
  cargo build --release -q -p cx-benches --bin cx-bench
  CX_BENCH=target/release/cx-bench
fi
PIN=()
if command -v taskset >/dev/null 2>&1; then
  CORE=${CORE:-$(($(nproc) - 1))}
  PIN=(taskset -c "$CORE")
  echo "pinned to core $CORE" >&2
else
  echo "taskset not found: not pinned" >&2
fi
mkdir -p "$OUT"
"$CX_BENCH" kernel --shapes "$SHAPE" --export "$OUT" >/dev/null
for r in $(seq 1 "$ROUNDS"); do
  "${PIN[@]}" "$CX_BENCH" kernel --shapes "$SHAPE" --batches "$BATCHES" --backends simd \
    --repeats "$REPEATS" --repeat-ms "$REPEAT_MS" --json "$OUT/kernel-$r.json" >"$OUT/kernel-$r.md"
  "${PIN[@]}" "$PYTHON" benches/onnx/onnx_peer.py --model "$OUT/bench-$SHAPE.safetensors" \
    --ref "$OUT/bench-$SHAPE.ref.json" --batches "$BATCHES" \
    --repeats "$REPEATS" --repeat-ms "$REPEAT_MS" >"$OUT/onnx-$r.json"
done
echo "runs in $OUT" >&2
"$PYTHON" - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ks = [json.load(open(f"{out}/kernel-{r}.json")) for r in range(1, rounds + 1)]
os_ = [json.load(open(f"{out}/onnx-{r}.json")) for r in range(1, rounds + 1)]
goal = {1: 10.0, 64: 5.0}
c = os_[0]["check"]
print(f"check: {c['rows_clear_and_equal']}/{c['rows_clear_of_threshold']} rows clear of threshold have equal spike counts "
      f"({c['rows_counts_equal']}/{c['rows']} overall), passed={c['passed']}")
peaks = [k["fma_peak"]["madds_per_s"] / 1e9 for k in ks]
print(f"FMA peak per round, G madds/s: {', '.join(f'{p:.1f}' for p in peaks)}; onnxruntime {os_[0]['onnxruntime_version']}, "
      f"Session.run overhead {statistics.median(o['run_call_overhead_us'] for o in os_):.2f} µs/call")
print("| batch | SIMD µs/sample per round | ONNX Runtime µs/sample per round | ratio per round | median ratio | goal | met | SIMD % of FMA peak per round |")
print("| ---: | --- | --- | --- | ---: | ---: | --- | --- |")
for row in os_[0]["rows"]:
    b = row["batch"]
    simd = [next(x for x in k["rows"] if x["batch"] == b and x["backend"] == "simd") for k in ks]
    onnx_us = [next(x for x in o["rows"] if x["batch"] == b)["us_per_sample_median"] for o in os_]
    simd_us = [s["us_per_sample"]["median"] for s in simd]
    ratios = [o / s for o, s in zip(onnx_us, simd_us)]
    med = statistics.median(ratios)
    g = goal.get(b)
    met = "-" if g is None else ("yes" if med >= g else "no")
    gs = "-" if g is None else f">= {g:.0f}x"
    shares = ", ".join(f"{s['peak_share'] * 100:.0f}%" for s in simd)
    f = lambda v, d=2: ", ".join(f"{x:.{d}f}" for x in v)
    print(f"| {b} | {f(simd_us)} | {f(onnx_us)} | {f(ratios)} | {med:.2f}x | {gs} | {met} | {shares} |")
PY
