#!/usr/bin/env bash
# Makes (once) the Python venv with pysap that the interop tests drive the router with, and
# prints the path of its python. pysap is an independent implementation of SAP's NI and router
# protocols; the tests use it as a peer, never as code of this project.
# Usage: scripts/pysap-venv.sh            (venv at $PYSAP_VENV, default target/pysap-venv)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${PYSAP_VENV:-$root/target/pysap-venv}
if ! "$venv/bin/python" -c 'import pysap.SAPRouter' >/dev/null 2>&1; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --disable-pip-version-check -q "pysap==0.2.1" >&2
  "$venv/bin/python" -c 'import pysap.SAPRouter' >&2
fi
echo "$venv/bin/python"
