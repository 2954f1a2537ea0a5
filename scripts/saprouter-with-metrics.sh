#!/usr/bin/env bash
# The release saprouter with its metrics endpoint switched on (on an ephemeral loopback
# port). Give it to the benchmark as a second binary to see what --metrics costs:
#   target/release/saprouter-bench --only throughput --baseline scripts/saprouter-with-metrics.sh
root=$(cd "$(dirname "$0")/.." && pwd)
exec "${SAPROUTER:-$root/target/release/saprouter}" --metrics 127.0.0.1:0 "$@"
