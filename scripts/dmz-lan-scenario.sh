#!/usr/bin/env bash
# The reverse-invoke DMZ/LAN scenario (routtab-samples/reverse-invoke/README.md) on one machine:
# two network namespaces joined by a veth pair, the LAN one dropping every inbound TCP SYN,
# the routers started with routtab-samples/reverse-invoke/ as they are, and the published
# tests run from the DMZ host. Then the DMZ router is restarted and the LAN router must
# register again. Needs root and `ip netns`; installs nftables when missing (or uses
# iptables). Prints PASS/FAIL per check and exits non-zero when any check fails.
#
# Binaries: $SAPROUTER_BIN and $NIPING_BIN, else target/debug after `cargo build`.
#
# SCENARIO_VARIANT=snc runs the published SNC variant instead: routtab-samples/
# reverse-invoke-snc/, certificates from scripts/make-test-pki.sh, both routers with -K
# (TLS on every link), plus a rogue LAN router with a valid certificate but another name
# that must not register.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VARIANT="${SCENARIO_VARIANT:-plain}"
case "$VARIANT" in
  plain) SAMPLES="$ROOT/routtab-samples/reverse-invoke" ;;
  snc) SAMPLES="$ROOT/routtab-samples/reverse-invoke-snc" ;;
  *) printf 'dmz-lan-scenario: SCENARIO_VARIANT must be plain or snc\n'; exit 2 ;;
esac
DMZ_IP=10.200.0.1
LAN_IP=10.200.0.2
TAG="ri$$"
DMZ_NS="$TAG-dmz"
LAN_NS="$TAG-lan"
WORK="$(mktemp -d /tmp/dmz-lan-scenario.XXXXXX)"
PIDS=()
FAILED=0
PASSED=0

say() { printf '%s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); say "PASS  $*"; }
fail() { FAILED=$((FAILED + 1)); say "FAIL  $*"; }

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null
  done
  ip netns del "$DMZ_NS" 2>/dev/null
  ip netns del "$LAN_NS" 2>/dev/null
  if [ "${KEEP_WORK:-}" = "" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then
  say "dmz-lan-scenario: needs root (network namespaces)"; exit 2
fi
if ! ip netns list >/dev/null 2>&1; then
  say "dmz-lan-scenario: 'ip netns' does not work here"; exit 2
fi

# Firewall tool: nftables, installed when missing; iptables as a fallback.
if ! command -v nft >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  say "installing nftables ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables) >/dev/null 2>&1 || true
fi
if command -v nft >/dev/null 2>&1; then FIREWALL=nft
elif command -v iptables >/dev/null 2>&1; then FIREWALL=iptables
else say "dmz-lan-scenario: neither nft nor iptables is available"; exit 2
fi

if [ -z "${SAPROUTER_BIN:-}" ] || [ -z "${NIPING_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --quiet --bins)
  SAPROUTER_BIN="${SAPROUTER_BIN:-$ROOT/target/debug/saprouter}"
  NIPING_BIN="${NIPING_BIN:-$ROOT/target/debug/niping}"
fi

in_dmz() { ip netns exec "$DMZ_NS" "$@"; }
in_lan() { ip netns exec "$LAN_NS" "$@"; }

# Polls "$@" every 0.1 s until it succeeds, at most $1 tenths of a second.
wait_until() {
  local tries=$1; shift
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

# TCP connect within 2 s from the DMZ host (bash's /dev/tcp, nothing to install).
tcp_open() { in_dmz timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

say "== network: $DMZ_NS ($DMZ_IP) <-veth-> $LAN_NS ($LAN_IP), firewall: $FIREWALL"
ip netns add "$DMZ_NS"
ip netns add "$LAN_NS"
ip link add "$TAG-d" type veth peer name "$TAG-l"
ip link set "$TAG-d" netns "$DMZ_NS"
ip link set "$TAG-l" netns "$LAN_NS"
in_dmz ip addr add "$DMZ_IP/24" dev "$TAG-d"
in_lan ip addr add "$LAN_IP/24" dev "$TAG-l"
for ns in "$DMZ_NS" "$LAN_NS"; do
  ip netns exec "$ns" ip link set lo up
done
in_dmz ip link set "$TAG-d" up
in_lan ip link set "$TAG-l" up

# The LAN host accepts no inbound TCP connection: every SYN from outside is dropped
# (its own loopback stays usable: the LAN router reaches the backend on 127.0.0.1).
if [ "$FIREWALL" = nft ]; then
  in_lan nft -f - <<EOF
table inet lan_inbound {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname != "lo" tcp flags & (syn | ack) == syn drop
  }
}
EOF
  in_lan nft list ruleset | sed 's/^/    /'
else
  in_lan iptables -A INPUT ! -i lo -p tcp --syn -j DROP
  in_lan ip6tables -A INPUT ! -i lo -p tcp --syn -j DROP 2>/dev/null || true
  in_lan iptables -S INPUT | sed 's/^/    /'
fi

mkdir -p "$WORK/dmz" "$WORK/lan" "$WORK/backend"
cp "$SAMPLES/cf1" "$SAMPLES/saprouttab-dmz" "$WORK/dmz/"
cp "$SAMPLES/cf2" "$SAMPLES/saprouttab-lan" "$WORK/lan/"

# SNC: -K and a SECUDIR per router (the scenario's start commands plus the files).
DMZ_SNC=()
LAN_SNC=()
if [ "$VARIANT" = snc ]; then
  bash "$ROOT/scripts/make-test-pki.sh" "$WORK/pki" SAPROUTER1 SAPROUTER2 ROGUE | sed 's/^/    /'
  DMZ_SNC=(env "SECUDIR=$WORK/pki/saprouter1" "$SAPROUTER_BIN" -K "p:CN=SAPROUTER1")
  LAN_SNC=(env "SECUDIR=$WORK/pki/saprouter2" "$SAPROUTER_BIN" -K "p:CN=SAPROUTER2")
else
  DMZ_SNC=("$SAPROUTER_BIN")
  LAN_SNC=("$SAPROUTER_BIN")
fi

start_dmz() {
  (cd "$WORK/dmz" && exec ip netns exec "$DMZ_NS" "${DMZ_SNC[@]}" -S 4001 -V 2 -R saprouttab-dmz -i cf1 \
    >>"$WORK/dmz/stdout" 2>&1) &
  DMZ_PID=$!
  PIDS+=("$DMZ_PID")
}
dmz_info() { in_dmz "$SAPROUTER_BIN" -l -H 127.0.0.1 -S 4001 2>&1; }
lan_info() { in_lan "$SAPROUTER_BIN" -l -H 127.0.0.1 -S 3299 2>&1; }
registered() { dmz_info | grep -q "srv no 1 "; }

say "== starting: backend niping -s -S 3201 (sapdp01) and the LAN router in $LAN_NS, the DMZ router in $DMZ_NS"
(cd "$WORK/backend" && exec ip netns exec "$LAN_NS" "$NIPING_BIN" -s -S 3201 -I 0 >"$WORK/backend/out" 2>&1) &
PIDS+=("$!")
start_dmz
(cd "$WORK/lan" && exec ip netns exec "$LAN_NS" "${LAN_SNC[@]}" -V 2 -R saprouttab-lan -i cf2 \
  >"$WORK/lan/stdout" 2>&1) &
PIDS+=("$!")

if wait_until 100 registered; then
  pass "the LAN router registered with the DMZ router (outbound from the LAN)"
else
  fail "no registration within 10 s"
  say "--- DMZ trace"; tail -20 "$WORK/dmz/dev_rout" 2>/dev/null || true
  say "--- LAN trace"; tail -20 "$WORK/lan/dev_rout" 2>/dev/null || true
fi
dmz_info | sed -n '/RI client/,$p' | sed 's/^/    /'
wait_until 50 in_lan timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3201' || true

say "== test 1: direct TCP connections from the DMZ host"
for port in 4001 5001; do
  if tcp_open "$DMZ_IP" "$port"; then pass "DMZ $DMZ_IP:$port answers"; else fail "DMZ $DMZ_IP:$port does not answer"; fi
done
for port in 3298 3299; do
  if tcp_open "$DMZ_IP" "$port"; then fail "DMZ $DMZ_IP:$port answers"; else pass "DMZ $DMZ_IP:$port closed"; fi
done
for port in 3201 3299 4001 5001 5002; do
  if tcp_open "$LAN_IP" "$port"; then fail "LAN $LAN_IP:$port answers"; else pass "LAN $LAN_IP:$port: no answer"; fi
done

say "== test 2: niping straight to the LAN host"
if in_dmz timeout 10 "$NIPING_BIN" -c -H "$LAN_IP" -S 3201 -L 1 >"$WORK/niping-direct.out" 2>&1; then
  fail "niping -c -H $LAN_IP -S 3201 succeeded"
else
  pass "niping -c -H $LAN_IP -S 3201 fails (no open port on the LAN host)"
fi

ROUTE="/H/$DMZ_IP/S/4001/H/$LAN_IP/S/5002/H/127.0.0.1/S/sapdp01"
niping_route() { in_dmz timeout 20 "$NIPING_BIN" -c -H "$ROUTE" -L 10 >"$WORK/niping-route.out" 2>&1; }

say "== test 3: niping through the DMZ router over the registered pseudo port"
if niping_route; then
  pass "niping -c -H $ROUTE"
  sed -n '/times/,$p' "$WORK/niping-route.out" | sed 's/^/    /'
else
  fail "niping -c -H $ROUTE"
  sed 's/^/    /' "$WORK/niping-route.out"
fi

if [ "$VARIANT" = snc ]; then
  say "== SNC: names on the link, and a rogue LAN router"
  if grep -q 'TLS link authenticated.*snc_name=p:CN=SAPROUTER2' "$WORK/dmz/dev_rout"; then
    pass "the DMZ router authenticated the LAN router as p:CN=SAPROUTER2"
  else
    fail "no TLS authentication of p:CN=SAPROUTER2 in the DMZ trace"
  fi
  if grep -q 'TLS link to the DMZ router authenticated.*snc_name=p:CN=SAPROUTER1' "$WORK/lan/dev_rout"; then
    pass "the LAN router authenticated the DMZ router as p:CN=SAPROUTER1"
  else
    fail "no TLS authentication of p:CN=SAPROUTER1 in the LAN trace"
  fi
  # Same CA, same host, same cf2 (10.200.0.2 / 5002), another name.
  mkdir -p "$WORK/rogue"
  cp "$SAMPLES/cf2" "$SAMPLES/saprouttab-lan" "$WORK/rogue/"
  (cd "$WORK/rogue" && exec ip netns exec "$LAN_NS" env "SECUDIR=$WORK/pki/rogue" "$SAPROUTER_BIN" \
    -K "p:CN=ROGUE" -S 3300 -V 2 -R saprouttab-lan -i cf2 >"$WORK/rogue/stdout" 2>&1) &
  ROGUE_PID=$!
  PIDS+=("$ROGUE_PID")
  if wait_until 100 grep -q 'registration refused.*p:CN=ROGUE' "$WORK/dmz/dev_rout"; then
    pass "the rogue LAN router (p:CN=ROGUE, valid CA) cannot register 10.200.0.2/5002"
    grep 'registration refused.*p:CN=ROGUE' "$WORK/dmz/dev_rout" | head -1 | sed 's/^/    /'
  else
    fail "the rogue LAN router's registration was not refused"
  fi
  if niping_route; then
    pass "niping still reaches the backend through the real LAN router"
  else
    fail "niping through the DMZ router after the rogue's attempt"
  fi
  kill "$ROGUE_PID" 2>/dev/null || true
  wait "$ROGUE_PID" 2>/dev/null || true
fi

say "== restart of the DMZ router"
kill "$DMZ_PID"
wait "$DMZ_PID" 2>/dev/null || true
if wait_until 50 bash -c "! ip netns exec $DMZ_NS timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4001'"; then
  pass "DMZ router stopped"
else
  fail "DMZ router still answers"
fi
RESTART_AT=$(date +%s%N)
start_dmz
if wait_until 200 registered; then
  ms=$(( ($(date +%s%N) - RESTART_AT) / 1000000 ))
  pass "the LAN router registered again, ${ms} ms after the DMZ router restarted"
else
  fail "no registration within 20 s of the restart"
fi
say "--- DMZ router -l"
dmz_info | sed -n '/RI client/,$p' | sed 's/^/    /'
say "--- LAN router -l"
lan_info | sed -n '/RI server/,$p' | sed 's/^/    /'
if niping_route; then
  pass "niping through the restarted DMZ router"
else
  fail "niping through the restarted DMZ router"
  sed 's/^/    /' "$WORK/niping-route.out"
fi

say "== link cut: all traffic between the hosts dropped, no FIN, no RST"
cut_link() {
  if [ "$FIREWALL" = nft ]; then
    in_lan nft -f - <<EOF
table inet cut {
  chain input { type filter hook input priority -10; policy drop; iifname "lo" accept; }
  chain output { type filter hook output priority -10; policy drop; oifname "lo" accept; }
}
EOF
  else
    in_lan iptables -I INPUT 1 ! -i lo -j DROP
    in_lan iptables -I OUTPUT 1 ! -o lo -j DROP
  fi
}
repair_link() {
  if [ "$FIREWALL" = nft ]; then
    in_lan nft delete table inet cut
  else
    in_lan iptables -D INPUT ! -i lo -j DROP
    in_lan iptables -D OUTPUT ! -o lo -j DROP
  fi
}
cut_link
CUT_AT=$(date +%s%N)
if wait_until 200 bash -c "ip netns exec $DMZ_NS $SAPROUTER_BIN -l -H 127.0.0.1 -S 4001 | grep -q 'srv no 0 '"; then
  ms=$(( ($(date +%s%N) - CUT_AT) / 1000000 ))
  # 15 s, plus half a second for this script's polling of -l.
  if [ "$ms" -le 15500 ]; then
    pass "the DMZ router dropped the silent link after ${ms} ms (limit: 15 s)"
  else
    fail "the DMZ router dropped the silent link only after ${ms} ms (limit: 15 s)"
  fi
else
  fail "the silent link was not dropped within 20 s"
fi
repair_link
if wait_until 400 registered; then
  pass "the LAN router registered again once the hosts could talk"
else
  fail "no registration within 40 s of the repair"
fi
if niping_route; then
  pass "niping through the repaired link"
else
  fail "niping through the repaired link"
  sed 's/^/    /' "$WORK/niping-route.out"
fi

say ""
say "variant: $VARIANT"
say "dmz-lan-scenario: $PASSED passed, $FAILED failed"
if [ "$FAILED" -ne 0 ]; then
  exit 1
fi
