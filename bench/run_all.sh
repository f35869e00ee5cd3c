#!/usr/bin/env bash
# Every benchmark, one after another (about 20 minutes on 2 cores): bash bench/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for bench in bench_trace bench_family bench_adapters bench_layout bench_pages bench_limits bench_browser bench_load; do
    echo "== bench/$bench.py"
    python "bench/$bench.py"
done
