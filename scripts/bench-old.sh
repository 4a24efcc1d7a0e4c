#!/usr/bin/env bash
# Build the rpcbench of an earlier molgen (default: the last one on
# kafka-go) as an agent for 'rpcbench -old', in a work tree of its own:
#
#   scripts/bench-old.sh [COMMIT] [OUT]     # default OUT: /tmp/rpcbench-old
#
# The earlier tree gets this tree's internal/bench/rpcbench/agent.go (it
# uses only what rpcbench has had since it measured CPU per call); nothing
# of it is committed anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
commit="${1:-6ebc970}" # the last commit whose transport was on kafka-go
out="${2:-/tmp/rpcbench-old}"
tree="$(mktemp -d /tmp/molgen-old-XXXXXX)"
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"' EXIT
git worktree add --detach "$tree" "$commit" >/dev/null
cp internal/bench/rpcbench/agent.go "$tree/internal/bench/rpcbench/agent.go"
(cd "$tree" && go build -o "$out" ./internal/bench/rpcbench)
echo "built the rpcbench of $commit ($(git log -1 --format=%s "$commit" | cut -c1-60)...) as $out"
