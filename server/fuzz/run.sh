#!/usr/bin/env bash
# Runs every fuzz target for a bounded time on its committed seeds; any
# crash (a panic, a failed check, a sanitizer report) exits non-zero.
#
#   server/fuzz/run.sh [SECONDS_PER_TARGET]   (default 60)
#
# Needs cargo-fuzz (installed from crates.io when missing) and nightly
# flags, which RUSTC_BOOTSTRAP=1 allows on the stable toolchain. New inputs
# go to a scratch directory; the committed seeds are only read. Crashes
# land in server/fuzz/artifacts/<target>/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

protocol_seeds=../../components/wire/tests/fixtures/protocol_corpus
declare -A seeds=(
    [frame_decoder]="$protocol_seeds"
    [connection]="$protocol_seeds"
    [openrtb_request]=seeds/openrtb_request
    [model_file]=seeds/model_file
    [dataset_reader]=seeds/dataset_reader
    [http_connection]=seeds/http_connection
)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cargo fuzz build --release
for target in frame_decoder connection http_connection openrtb_request model_file dataset_reader; do
    mkdir -p "$scratch/$target"
    echo "== fuzz $target for ${seconds} s"
    log="$scratch/$target.log"
    if ! cargo fuzz run --release "$target" "$scratch/$target" "${seeds[$target]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz $target FAILED: the crashing input is in server/fuzz/artifacts/$target/"
        exit 1
    fi
    grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" || true
done
