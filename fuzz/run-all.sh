#!/usr/bin/env bash
# Run every fuzz target for FUZZ_SECS seconds (default 60) each: what
# `make fuzz` runs. Stops at the first crash, leaving it in
# fuzz/artifacts/<target>/. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SECS="${FUZZ_SECS:-60}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io" >&2
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address); the project's
# toolchain is stable, and RUSTC_BOOTSTRAP=1 lets it accept them.
export RUSTC_BOOTSTRAP=1

./seed-corpus.sh
for t in $(cargo fuzz list); do
    echo "== fuzz $t for ${SECS}s"
    cargo fuzz run "$t" -- -max_total_time="$SECS" -print_final_stats=1
done
