#!/usr/bin/env bash
# A first real run of gracestop: build it, start two small services that write
# pidfiles, and stop them the way a deploy script would.
#   - "polite" traps SIGTERM, cleans up for a second and exits: gracestop returns
#     the moment it is gone, long before --wait.
#   - "stubborn" ignores SIGTERM: gracestop waits 2 s, sends SIGQUIT (--dump),
#     then SIGKILL (--force). Like every background job of a script, it starts
#     with SIGQUIT ignored, and gracestop warns that --dump will do nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
gs=target/release/gracestop
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Each service writes its pidfile only once its trap is set (a readiness handshake).
sh -c 'trap "echo \"polite: draining...\"; sleep 1; echo \"polite: bye\"; exit 0" TERM
       echo $$ > "$1"; while :; do sleep 1 & wait $!; done' polite "$work/polite.pid" &
sh -c 'trap "echo \"stubborn: SIGTERM? no.\"" TERM
       echo $$ > "$1"; while :; do sleep 1 & wait $!; done' stubborn "$work/stubborn.pid" &
for _ in $(seq 100); do [[ -s $work/polite.pid && -s $work/stubborn.pid ]] && break; sleep 0.05; done

echo "== gracestop stop --pidfile polite.pid --wait 30"
"$gs" stop --pidfile "$work/polite.pid" --wait 30; echo "exit status $?"
echo
echo "== gracestop stop --pidfile stubborn.pid --wait 2 --dump --dump-wait 1 --force"
"$gs" stop --pidfile "$work/stubborn.pid" --wait 2 --dump --dump-wait 1 --force; echo "exit status $?"
echo
echo "== the same pidfile again: nothing is running any more"
"$gs" stop --pidfile "$work/stubborn.pid" || echo "exit status $? (3: not running)"
wait 2>/dev/null || true
