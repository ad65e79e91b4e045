#!/usr/bin/env bash
# What gracestop is for, on a real HTTP service (examples/demo_service.rs):
# a load balancer sends 50 requests a second to a pool of two instances, and
# one instance is stopped in the middle, twice:
#   (a) with plain `kill -15`. The service itself is graceful (it stops
#       accepting and finishes its requests in flight), yet requests fail: the
#       load balancer keeps sending new ones until its health checks (every
#       300 ms, 2 failures to mark it down) notice that it is gone.
#   (b) under `gracestop run --deregister-url .../deregister --drain 1s`, with
#       SIGTERM sent to gracestop: the instance is deregistered first (its
#       health answers 503), the load balancer takes it out, and only after the
#       drain does the service get SIGTERM. No request fails.
# The last two lines are the summary, one per run:
#   "LABEL: F of N requests failed (...)".
# Everything listens on 127.0.0.1 on free ports; every wait is bounded; the
# script stops only the processes it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin gracestop --example demo_service
gs=target/release/gracestop
svc=target/release/examples/demo_service
work=$(mktemp -d)

cleanup() {
    # Only our own background jobs that still run (none, unless we failed).
    local job
    for job in $(jobs -pr); do kill -KILL "$job" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# wait_for FILE PID SECONDS: waits until FILE has been written (a handshake),
# while PID still runs, for at most SECONDS.
wait_for() {
    local i
    for ((i = 0; i < $3 * 100; i++)); do
        [[ -s $1 ]] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

# wait_exit PID SECONDS: waits until PID has exited, at most SECONDS; then
# sets $status to its exit status. A PID that outlives the bound is killed.
wait_exit() {
    local i
    for ((i = 0; i < $2 * 100; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.01
    done
    if kill -0 "$1" 2>/dev/null; then
        echo "demo: $1 still runs after $2 s; killing it" >&2
        kill -KILL "$1"
    fi
    status=0
    wait "$1" || status=$?
}

# start NAME COMMAND...: starts COMMAND in the background with every @PORT@
# replaced by a free port, and waits for the service to write its ready file
# ($work/NAME.ready). Sets $pid and $port. A port taken in between (exit 98)
# is retried with another one.
start() {
    local name=$1 attempt
    shift
    for attempt in 1 2 3; do
        port=$("$svc" port)
        "${@//@PORT@/$port}" &
        pid=$!
        wait_for "$work/$name.ready" "$pid" 10 && return 0
        wait_exit "$pid" 5
        [[ $status == 98 ]] || break
    done
    echo "demo: $name did not start (exit status $status)" >&2
    exit 1
}

# balance LABEL: runs the load balancer against the instance on $port and the
# peer for 150 requests at 50/s, and returns once it has sent 50 of them. Sets $lb.
balance() {
    local label=$1
    "$svc" lb --backend "instance=127.0.0.1:$port" --backend "peer=127.0.0.1:$peer_port" \
        --rate 50 --requests 150 --inter 300 --fall 2 --rise 2 \
        --mark "50:$work/$label.mark" --label "$label" --summary "$work/$label.summary" &
    lb=$!
    wait_for "$work/$label.mark" "$lb" 20 || { echo "demo: the load balancer did not get going" >&2; exit 1; }
}

echo "== the peer: the pool's other instance, up all along"
start peer "$svc" serve --port @PORT@ --ready "$work/peer.ready" --name peer
peer=$pid peer_port=$port

echo
echo "== (a) the control: kill -15"
start control "$svc" serve --port @PORT@ --ready "$work/control.ready" --name instance
instance=$pid
balance "kill -15"
echo "demo: kill -15 $instance"
kill -15 "$instance"
wait_exit "$instance" 10
echo "demo: the instance exited with status $status"
wait_exit "$lb" 20

echo
echo "== (b) gracestop run --deregister-url http://127.0.0.1:PORT/deregister --drain 1s --wait 10"
start graceful "$gs" run --deregister-url "http://127.0.0.1:@PORT@/deregister" --drain 1s --wait 10 -- \
    "$svc" serve --port @PORT@ --ready "$work/graceful.ready" --name instance
supervisor=$pid
balance "gracestop run"
echo "demo: kill -15 $supervisor (gracestop)"
kill -15 "$supervisor"
wait_exit "$supervisor" 20
echo "demo: gracestop exited with status $status"
wait_exit "$lb" 20

kill -15 "$peer"
wait_exit "$peer" 10

echo
echo "== summary"
cat "$work/kill -15.summary" "$work/gracestop run.summary"
