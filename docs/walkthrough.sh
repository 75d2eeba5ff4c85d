#!/usr/bin/env bash
# The README walkthrough, run for real in a temporary directory: Alice creates a group and
# invites Bob, who joins. Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release -p peergroup-cli
pg="$PWD/target/release/peergroup"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
step() { printf '\n$ peergroup %s\n' "$*"; "$pg" "$@"; }

step --home alice identity create "Alice" --classifier alice
step --home alice group create "Friends" --identity Alice
step --home bob identity create "Bob"
"$pg" --home bob identity xml Bob > bob.idinfo
echo "(Bob's identity info written to bob.idinfo: $(wc -c < bob.idinfo) bytes)"
"$pg" --home alice invite --group Friends --identity-info bob.idinfo --role member --expires 15d > bob.inv
echo "(Alice's invitation for Bob written to bob.inv: $(wc -c < bob.inv) bytes)"
step --home bob invitation show bob.inv
step --home bob join bob.inv --identity Bob
step --home bob group list
printf 'correct horse battery staple\n' > pw.txt
"$pg" --home bob identity export Bob --password-file pw.txt > bob.export
echo "(Bob's identity exported to bob.export under a password)"
printf '\nwalkthrough: every step succeeded\n'
