#!/usr/bin/env bash
# The peers, side by side (BENCHMARKS §12): our sync, automerge-repo 2.x and PouchDB 9 on the
# workload of §5, each through a counter on 127.0.0.1, in one run. Prints the table.
#   tests/peers/run.sh            # figures and the tables in target/peers/
# Needs node and npm (installed from Debian's packages when missing) and the npm registry
# for `npm ci` (the versions are pinned by package-lock.json). Loopback only.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${PEERS_OUT:-$root/target/peers}"
mkdir -p "$out"

command -v node >/dev/null && command -v npm >/dev/null || "$root/scripts/setup.sh" nodejs npm
# `npm ci` refuses this lock where the registry lacks cbor-extract's optional prebuilt
# packages (@cbor-extract/*, which automerge-repo's cbor-x can do without): `npm install`
# then installs the same locked versions, skipping them.
(cd "$here" && { npm ci --no-audit --no-fund --loglevel=silent 2>/dev/null ||
  npm install --no-audit --no-fund --loglevel=error; })

# A self-signed certificate for 127.0.0.1, so that the peers can also be measured over TLS
# (our QUIC connection always is).
if [ ! -f "$out/cert.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$out/key.pem" -out "$out/cert.pem" 2>/dev/null
fi

cd "$root"
echo "exporting the workload of §5 (40 children, a year of history, the offline week)" >&2
cargo run --release -q -p shouwang-tests --bin export-workload -- "$out/workload.json"
echo "ours: the real hub and device on 127.0.0.1" >&2
cargo bench -q -p shouwang-tests --bench peers > "$out/ours.json"
echo "automerge-repo and PouchDB" >&2
PEERS_CERT="$out/cert.pem" PEERS_KEY="$out/key.pem" NODE_EXTRA_CA_CERTS="$out/cert.pem" \
  node "$here/run.mjs" "$out/workload.json" "${PEERS_NOOP:-10,100,1000}" > "$out/peers.json"
node "$here/table.mjs" "$out/ours.json" "$out/peers.json" | tee "$out/table.md"
# The reconnect storm of §7 for the two peers (PEERS_STORM=0 skips it; ours is
# `cargo bench -p shouwang-relay --bench storm`).
if [ "${PEERS_STORM:-1}" != 0 ]; then
  echo "automerge-repo and PouchDB: the reconnect storm" >&2
  node "$here/storm.mjs" "$out/workload.json" > "$out/storm.json"
  node "$here/storm.mjs" --table "$out/storm.json" | tee -a "$out/table.md"
fi
