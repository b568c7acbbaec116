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
# Opt-in: the query bench at BENCH_BIG_EVENTS events (e.g. 10000000), on a
# history of a size-weighted mix of whole real payloads (bench/README.md,
# "Query at 10M events"). It needs about 2.1 KB of disk per event (~21 GB
# for 10M) and 40-50 minutes to generate on 2 cores.
if [ -n "${BENCH_BIG_EVENTS:-}" ]; then
    need_kb=$((BENCH_BIG_EVENTS * 22 / 10))
    free_kb=$(df -Pk bench/out | awk 'NR == 2 { print $4 }')
    if [ -d "${BENCH_DATA:-bench/out/history-$BENCH_BIG_EVENTS}" ] || [ "$free_kb" -gt "$need_kb" ]; then
        BENCH_GEN_ARGS="--mix-bytes 100000" \
            bash bench/query.sh "$BENCH_BIG_EVENTS" "${BENCH_REQUESTS:-2000}"
    else
        echo "[bench] skipping the $BENCH_BIG_EVENTS-event query bench: $((need_kb / 1048576)) GB needed, $((free_kb / 1048576)) GB free" >&2
    fi
fi
