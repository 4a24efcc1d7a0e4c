#!/usr/bin/env bash
# Run every fuzz target of molgen's decoders for a while each: what a
# hostile record can reach (wire schemas, the payload codec, error
# replies, request headers, signatures, the generated codec of the test
# services). CI runs it briefly; docs/FAULTS.md has a long run's counts.
#
#   scripts/fuzz.sh            # 10s per target
#   FUZZTIME=5m scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
time="${FUZZTIME:-10s}"
targets=(
	"./runtime/schema FuzzParse"
	"./runtime/schema FuzzCompatible"
	"./runtime FuzzDecoder"
	"./runtime FuzzErrorReply"
	"./runtime/internal/envelope FuzzVerify"
	"./runtime/internal/kafka FuzzIncoming"
	"./internal/testsvc FuzzDecode"
)
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "== fuzz $pkg $name ($time)"
	out="$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$time" "$pkg" 2>&1)" || { echo "$out"; echo "FAIL: $pkg $name" >&2; exit 1; }
	# The last progress line says how many inputs were tried.
	grep -E '^fuzz: elapsed' <<<"$out" | tail -n1 || true
done
echo "== every fuzz target passed"
