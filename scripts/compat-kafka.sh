#!/usr/bin/env bash
# compat-kafka.sh runs franz-go's own kgo integration suite
# (github.com/twmb/franz-go/pkg/kgo, from the module cache at the version in
# go.mod) against a `magnetar standalone` it starts on a temporary data
# directory and a port the kernel picks. It stops that server when done.
#
# Environment:
#   GO            go command (default go)
#   KGO_SKIP      -skip regexp of the tests left out (docs/kafka-compat.md
#                 says why each one is); empty runs everything
#   KGO_RUN       -run regexp (default: every test)
#   KGO_TEST_RECORDS  records per ETL test (default here 50000; the suite's
#                 own default is 500000)
#   KGO_TIMEOUT   go test -timeout (default 20m)
#   KGO_FLAGS     extra go test flags (e.g. -v)
#   SERVER_BUILD_FLAGS  go build flags for magnetar, e.g. -race: the run
#                 then also fails if the server reports a data race
#   MAGNETAR_LOG  a path to keep the server's log at
set -euo pipefail

GO=${GO:-go}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/magnetar-compat-kafka.XXXXXX")
server_pid=""
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [ -n "${MAGNETAR_LOG:-}" ] && [ -f "$work/magnetar.log" ]; then
		cp "$work/magnetar.log" "$MAGNETAR_LOG"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && "$GO" build ${SERVER_BUILD_FLAGS:-} -o "$work/magnetar" ./cmd/magnetar)

# The suite's large-batch tests create topics with max.message.bytes up to
# 10 MiB; topic configs are not applied yet, so the broker-wide limits are
# raised to that (Kafka's own default is 1 MiB).
: >"$work/magnetar.log" # before the server starts: the loop below reads it at once
"$work/magnetar" standalone --data-dir "$work/data" \
	--native-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --kafka.listen-addr 127.0.0.1:0 \
	--kafka.max-message-bytes 10485760 --broker.max-message-bytes 10485760 \
	2>"$work/magnetar.log" &
server_pid=$!

seeds=""
for _ in $(seq 1 300); do
	seeds=$(sed -n 's/.*msg="magnetar standalone ready".* kafka=\([^ ]*\).*/\1/p' "$work/magnetar.log" | head -n1)
	[ -n "$seeds" ] && break
	if ! kill -0 "$server_pid" 2>/dev/null; then
		cat "$work/magnetar.log" >&2
		echo "compat-kafka: magnetar exited before it was ready" >&2
		exit 1
	fi
	sleep 0.1
done
if [ -z "$seeds" ]; then
	tail -n 50 "$work/magnetar.log" >&2
	echo "compat-kafka: magnetar was not ready within 30s" >&2
	exit 1
fi
echo "compat-kafka: magnetar standalone (pid $server_pid) serves Kafka on $seeds"

status=0
(cd "$root" && KGO_SEEDS="$seeds" KGO_TEST_RF=1 KGO_TEST_RECORDS="${KGO_TEST_RECORDS:-50000}" \
	"$GO" test -count=1 -timeout "${KGO_TIMEOUT:-20m}" ${KGO_FLAGS:-} \
	-run "${KGO_RUN:-.}" ${KGO_SKIP:+-skip "$KGO_SKIP"} github.com/twmb/franz-go/pkg/kgo) || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
	echo "compat-kafka: magnetar exited during the run" >&2
	status=1
fi
if grep -q 'WARNING: DATA RACE' "$work/magnetar.log"; then
	echo "compat-kafka: magnetar reported a data race:" >&2
	sed -n '/WARNING: DATA RACE/,/^==================$/p' "$work/magnetar.log" >&2
	status=1
fi
if grep -q '^panic:' "$work/magnetar.log"; then
	echo "compat-kafka: magnetar panicked:" >&2
	sed -n '/^panic:/,$p' "$work/magnetar.log" | head -n 60 >&2
	status=1
fi
if [ "$status" -ne 0 ]; then
	echo "compat-kafka: failed; last lines of the magnetar log:" >&2
	tail -n 30 "$work/magnetar.log" >&2
fi
exit "$status"
