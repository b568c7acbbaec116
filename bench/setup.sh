#!/usr/bin/env bash
# Install what the benchmarks need (Debian packages). Idempotent: packages
# already installed are skipped, and apt-get runs only if something is missing.
#
#   wrk      the HTTP load generator (ingest and query benches)
#   webhook  adnanh/webhook, the comparison server for the ingest bench
#   jq       reading JSON answers in the scripts
#   curl     health checks and one-off requests
# and, with npm, smee-client 5.0.0 under bench/tools/smee (forward-latency.sh).
set -euo pipefail

PKGS=(wrk webhook jq curl)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: not root and no sudo; install ${PKGS[*]} by hand" >&2; exit 1; }
    SUDO=(sudo)
fi

if command -v npm >/dev/null && [ ! -f "$(dirname "$0")/tools/smee/node_modules/smee-client/package.json" ]; then
    echo "setup: npm ci in bench/tools/smee (smee-client)"
    npm ci --prefix "$(dirname "$0")/tools/smee" --no-audit --no-fund >/dev/null
fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all present (${PKGS[*]})"
    exit 0
fi

echo "setup: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
