#!/usr/bin/env bash
# Makes sure a docker engine answers: when `docker info` fails, starts dockerd in the
# background (its output to $DOCKERD_LOG, default /tmp/dockerd.log) and waits for it, 60 s
# at most. Prints "running" when an engine was already answering, "started PID" when this
# script started dockerd (stop it with `kill PID` when done); exits non-zero when no engine
# answers. Needs root to start dockerd.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  printf 'running\n'
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  printf 'docker-up: dockerd is not installed (apt-get install docker.io)\n' >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  printf 'docker-up: no docker engine answers, and starting dockerd needs root\n' >&2
  exit 2
fi

LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
# Its own session, no terminal, nothing inherited: it outlives this script and its caller's
# pipes.
setsid dockerd </dev/null >>"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 600); do
  if docker info >/dev/null 2>&1; then
    printf 'started %s\n' "$PID"
    exit 0
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    printf 'docker-up: dockerd exited at start; the end of %s:\n' "$LOG" >&2
    tail -20 "$LOG" >&2
    exit 1
  fi
  sleep 0.1
done
printf 'docker-up: dockerd (pid %s) did not answer within 60 s; the end of %s:\n' "$PID" "$LOG" >&2
tail -20 "$LOG" >&2
kill "$PID" 2>/dev/null || true
exit 1
