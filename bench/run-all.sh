#!/usr/bin/env bash
# `make bench`: every benchmark, one after the other. Figures go to
# bench/out/ and the summaries to stdout; copy them into bench/RESULTS.md.
# Run on a quiet machine: the load generator and the server share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup.sh
for bytes in 1229 1024 25600 1048576; do
    bash bench/ingest.sh "$bytes" "${BENCH_SECS:-10}"
done
BENCH_PIN=1 bash bench/ingest.sh 1229 "${BENCH_SECS:-10}"
bash bench/query.sh "${BENCH_EVENTS:-1000000}" "${BENCH_REQUESTS:-2000}"
bash bench/forward-latency.sh "${BENCH_FWD_SAMPLES:-500}"
