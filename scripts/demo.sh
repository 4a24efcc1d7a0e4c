#!/usr/bin/env bash
# The blog example (examples/blog) built from the same code under three
# placements and run on the embedded broker, so no Kafka install is needed:
#   1. monolith       one process, every call a function call, no Kafka
#   2. microservices  one process per service, every call over Kafka
#   3. mixed          users+posts together, the entry points apart
# The demo's output must be the same every time; the script says so or fails.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d /tmp/molgen-demo.XXXXXX)"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

wait_log() { # file text
	for _ in $(seq 1 600); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "timed out waiting for '$2' in $1:" >&2
	cat "$1" >&2
	exit 1
}

step "building molgen"
go build -o "$work/molgen" ./cmd/molgen
molgen="$work/molgen"

step "1. monolith: molgen build -o bin ./examples/blog/..."
"$molgen" build -o "$work/monolith" ./examples/blog/...
"$work/monolith/monolith" -mains demo 2>"$work/monolith.log" | tee "$work/monolith.out"

step "starting the embedded broker: molgen broker"
"$molgen" broker -addr 127.0.0.1:0 >"$work/broker.log" 2>&1 &
pids+=($!)
wait_log "$work/broker.log" "listening on"
brokers="$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$work/broker.log")"
echo "broker at $brokers"

run_placement() { # name, node that runs the demo main
	local name="$1" demo_node="$2" dir="$work/$1" node
	step "$name: molgen build -placement examples/blog/placements/$name.yaml"
	"$molgen" build -placement "examples/blog/placements/$name.yaml" -o "$dir" ./examples/blog/...
	local nodes=()
	for bin in "$dir"/*; do
		node="$(basename "$bin")"
		[[ "$node" == "$demo_node" ]] && continue
		nodes+=("$node")
		BLOG_ADDR=127.0.0.1:0 "$bin" -brokers "$brokers" >"$dir/$node.log" 2>&1 &
		pids+=($!)
	done
	for node in "${nodes[@]}"; do
		wait_log "$dir/$node.log" "node started"
		echo "node $node is up"
	done
	echo "running the demo main on node $demo_node:"
	"$dir/$demo_node" -brokers "$brokers" -mains demo 2>"$dir/demo.log" | tee "$work/$name.out"
	for node in "${nodes[@]}"; do pkill -TERM -f "$dir/$node" || true; done
}

run_placement microservices demo
run_placement mixed edge

step "comparing"
for name in microservices mixed; do
	if ! diff -u "$work/monolith.out" "$work/$name.out"; then
		echo "the $name output differs from the monolith's" >&2
		exit 1
	fi
done
echo "Same output as a monolith, as microservices and mixed: same code, three placements."
