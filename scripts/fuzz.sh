#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (libFuzzer; needs a nightly toolchain and cargo-fuzz:
# `rustup toolchain install nightly`, `cargo install cargo-fuzz`). See docs/fuzzing.md.
#
#   scripts/fuzz.sh [-t SECONDS] [-j PARALLEL] [TARGET...]
#
# Each target runs SECONDS (default 600) with its working corpus in fuzz/corpus/<target>/
# (not committed), the committed seeds of fuzz/seeds/<target>/ and the protocol dictionary.
# PARALLEL targets run at once (default 1). Crashes land in fuzz/artifacts/<target>/; the
# script exits non-zero when any target found one. Logs: fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=600
jobs=1
while getopts "t:j:" opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) sed -n '2,11p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

max_len() {
  case $1 in
    ni_frame) echo 12000 ;;   # a whole first message (10024) plus framing
    routtab|ri_params) echo 8192 ;;
    proxy_header) echo 4200 ;; # past the 4096-byte bound of a version 2 header
    *) echo 10100 ;;          # one NI message of the route phase
  esac
}

cargo +nightly fuzz build -O >/dev/null
mkdir -p logs
# Run the binaries built above directly, so that edits to the sources during a long run
# do not rebuild (or break) the targets still waiting for their turn.
bin=target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release
run_one() {
  local t=$1
  mkdir -p "corpus/$t" "seeds/$t" "artifacts/$t"
  "$bin/$t" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" \
    -dict=dict/saprouter.dict -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "corpus/$t" "seeds/$t" >"logs/$t.log" 2>&1
}

failed=()
running=0
declare -A pids
for t in "${targets[@]}"; do
  run_one "$t" & pids[$t]=$!
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
for t in "${!pids[@]}"; do
  if ! wait "${pids[$t]}"; then failed+=("$t"); fi
done
for t in "${targets[@]}"; do
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo "?")
  echo "$t: ${runs} executions in ${seconds}s$( [[ " ${failed[*]} " == *" $t "* ]] && echo ' -- FAILED, see fuzz/artifacts/'"$t" )"
done
[ ${#failed[@]} -eq 0 ]
