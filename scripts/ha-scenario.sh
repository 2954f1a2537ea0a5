#!/usr/bin/env bash
# The high-availability reference topology (examples/ha/) on one machine, in network
# namespaces joined by a bridge:
#
#   client-a 10.201.0.10, client-b 10.201.0.11      users (client-b is refused by the table)
#        |  10.201.0.100:3299
#   [ haproxy ]  send-proxy-v2, health checks every second
#        |                       |
#   [ DMZ router A ] .1     [ DMZ router B ] .2     -i cf-dmz, --proxy-from 10.201.0.100
#        ^  ^                    ^  ^               (links opened by the LAN routers)
#   [ LAN router A ] .21    [ LAN router B ] .22    -i cf-lan: both register 10.201.9.9/5002
#   [ rogue LAN router ] .23                        outside the ACE list
#
# The LAN namespaces drop every inbound TCP SYN. Each check prints PASS or FAIL with what
# was measured; the script exits non-zero when any check fails. Needs root, `ip netns`,
# haproxy and nftables (or iptables).
#
# Binaries: $SAPROUTER_BIN and $NIPING_BIN, else target/debug after `cargo build`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
EXAMPLE="$ROOT/examples/ha"
TAG="ha$$"
NET=10.201.0
VIP=$NET.100
PSEUDO=10.201.9.9
WORK="$(mktemp -d /tmp/ha-scenario.XXXXXX)"
declare -A PID
FAILED=0
PASSED=0

say() { printf '%s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); say "PASS  $*"; }
fail() { FAILED=$((FAILED + 1)); say "FAIL  $*"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

HOSTS=(client-a client-b lb dmz-a dmz-b lan-a lan-b rogue)
declare -A ADDR=(
  [client-a]=$NET.10 [client-b]=$NET.11 [lb]=$VIP
  [dmz-a]=$NET.1 [dmz-b]=$NET.2
  [lan-a]=$NET.21 [lan-b]=$NET.22 [rogue]=$NET.23
)

cleanup() {
  set +e
  for name in "${!PID[@]}"; do kill -9 "${PID[$name]}" 2>/dev/null; done
  for name in "${!PID[@]}"; do wait "${PID[$name]}" 2>/dev/null; done
  for host in "${HOSTS[@]}"; do ip netns del "$TAG-$host" 2>/dev/null; done
  ip netns del "$TAG-hub" 2>/dev/null
  if [ "${KEEP_WORK:-}" = "" ]; then rm -rf "$WORK"; else say "work kept in $WORK"; fi
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then say "ha-scenario: needs root (network namespaces)"; exit 2; fi
if ! ip netns list >/dev/null 2>&1; then say "ha-scenario: 'ip netns' does not work here"; exit 2; fi
if ! command -v haproxy >/dev/null 2>&1; then say "ha-scenario: needs haproxy (Debian's package)"; exit 2; fi
if command -v nft >/dev/null 2>&1; then FIREWALL=nft
elif command -v iptables >/dev/null 2>&1; then FIREWALL=iptables
else say "ha-scenario: neither nft nor iptables is available"; exit 2
fi

if [ -z "${SAPROUTER_BIN:-}" ] || [ -z "${NIPING_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --quiet --bins)
  SAPROUTER_BIN="${SAPROUTER_BIN:-$ROOT/target/debug/saprouter}"
  NIPING_BIN="${NIPING_BIN:-$ROOT/target/debug/niping}"
fi

in_ns() { local host=$1; shift; ip netns exec "$TAG-$host" "$@"; }

# Polls "$@" every 50 ms until it succeeds, at most $1 tries.
wait_until() {
  local tries=$1; shift
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  return 1
}

say "== network: a bridge in $TAG-hub, one namespace per host on $NET.0/24"
ip netns add "$TAG-hub"
in_ns hub ip link add br0 type bridge
in_ns hub ip link set br0 up
i=0
for host in "${HOSTS[@]}"; do
  i=$((i + 1))
  ip netns add "$TAG-$host"
  ip link add "$TAG-$i" type veth peer name "$TAG-${i}p"
  ip link set "$TAG-$i" netns "$TAG-$host"
  ip link set "$TAG-${i}p" netns "$TAG-hub"
  in_ns hub ip link set "$TAG-${i}p" master br0 up
  in_ns "$host" ip link set lo up
  in_ns "$host" ip link set "$TAG-$i" name eth0
  in_ns "$host" ip addr add "${ADDR[$host]}/24" dev eth0
  in_ns "$host" ip link set eth0 up
done

# The LAN hosts accept no inbound TCP connection (their own loopback stays usable).
for host in lan-a lan-b rogue; do
  if [ "$FIREWALL" = nft ]; then
    in_ns "$host" nft -f - <<EOF
table inet lan_inbound {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname != "lo" tcp flags & (syn | ack) == syn drop
  }
}
EOF
  else
    in_ns "$host" iptables -A INPUT ! -i lo -p tcp --syn -j DROP
  fi
done

for host in dmz-a dmz-b lan-a lan-b rogue lb; do
  mkdir -p "$WORK/$host"
done
for host in dmz-a dmz-b; do cp "$EXAMPLE/cf-dmz" "$EXAMPLE/saprouttab-dmz" "$WORK/$host/"; done
for host in lan-a lan-b rogue; do cp "$EXAMPLE/cf-lan" "$EXAMPLE/saprouttab-lan" "$WORK/$host/"; done
cp "$EXAMPLE/haproxy.cfg" "$WORK/lb/"

start_dmz() {
  local host=$1
  (cd "$WORK/$host" && exec ip netns exec "$TAG-$host" "$SAPROUTER_BIN" -S 3299 -V 2 \
    -G saprouter.log -E -R saprouttab-dmz -i cf-dmz --proxy-from "$VIP" >>stdout 2>&1) &
  PID[$host]=$!
}
start_lan() {
  local host=$1
  (cd "$WORK/$host" && exec ip netns exec "$TAG-$host" "$SAPROUTER_BIN" -V 2 \
    -G saprouter.log -E -R saprouttab-lan -i cf-lan >>stdout 2>&1) &
  PID[$host]=$!
}
kill9() {
  local host=$1
  kill -9 "${PID[$host]}" 2>/dev/null || true
  wait "${PID[$host]}" 2>/dev/null || true
  unset "PID[$host]"
}
info() { in_ns "$1" "$SAPROUTER_BIN" -l -H 127.0.0.1 -S 3299 2>&1; }
# Registrations held by a DMZ router: lines of its -l naming an instance.
instances() { info "$1" | grep -c "instance" || true; }
has_instances() { [ "$(instances "$1")" -ge "$2" ]; }
# Sessions a router took: CONNECT FROM lines of hosts of the topology (its own -l calls
# come from 127.0.0.1 and do not count).
connects() { grep -c "CONNECT FROM.*host $NET\." "$WORK/$1/saprouter.log" 2>/dev/null || true; }

# Starts router $2 again with $1 (start_lan or start_dmz) and checks that it takes a
# session through the balancer within 2 s of its start; $3 names it in the output.
restarted_takes_sessions() {
  local start=$1 host=$2 label=$3 before started took=""
  before=$(connects "$host")
  started=$(now_ms)
  "$start" "$host"
  for _ in $(seq 100); do
    niping_once client-a || true
    if [ "$(connects "$host")" -gt "$before" ]; then took=$(( $(now_ms) - started )); break; fi
    sleep 0.05
  done
  if [ -n "$took" ] && [ "$took" -le 2000 ]; then
    pass "$label took a session ${took} ms after its start (limit: 2 s)"
  else
    fail "$label took no session within 2 s of its start (${took:-none})"
  fi
}

ROUTE="/H/$VIP/S/3299/H/$PSEUDO/S/5002/H/127.0.0.1/S/sapdp01"
# One short niping session from a client host; output in $WORK/niping.out.
niping_once() {
  in_ns "${1:-client-a}" timeout 10 "$NIPING_BIN" -c -H "$ROUTE" -L 1 >"$WORK/niping.out" 2>&1
}

say "== starting: a niping echo server (sapdp01 = 3201) on each LAN host, the routers, haproxy"
for host in lan-a lan-b rogue; do
  (cd "$WORK/$host" && exec ip netns exec "$TAG-$host" "$NIPING_BIN" -s -S 3201 -I 0 >niping-s.out 2>&1) &
  PID[$host-echo]=$!
done
start_dmz dmz-a
start_dmz dmz-b
START_AT=$(now_ms)
start_lan lan-a
start_lan lan-b
(cd "$WORK/lb" && exec ip netns exec "$TAG-lb" haproxy -db -f haproxy.cfg >haproxy.out 2>&1) &
PID[lb]=$!

if wait_until 200 has_instances dmz-a 2 && wait_until 100 has_instances dmz-b 2; then
  pass "both LAN routers registered $PSEUDO/5002 with both DMZ routers, $(( $(now_ms) - START_AT )) ms after their start"
else
  fail "registrations: dmz-a $(instances dmz-a), dmz-b $(instances dmz-b) instances (want 2 each)"
fi
info dmz-a | sed -n "/RI client/,\$p" | sed "s/^/    dmz-a: /" || true
info lan-a | sed -n "/RI server/,\$p" | sed "s/^/    lan-a: /" || true
wait_until 100 in_ns client-a timeout 1 bash -c "exec 3<>/dev/tcp/$VIP/3299" || true

say "== spread: 16 sessions through the balancer"
ok=0
for _ in $(seq 16); do
  if niping_once client-a; then ok=$((ok + 1)); fi
done
da=$(connects dmz-a); db=$(connects dmz-b); la=$(connects lan-a); lb=$(connects lan-b)
say "    sessions ok $ok/16; CONNECT FROM: dmz-a $da, dmz-b $db, lan-a $la, lan-b $lb"
if [ "$ok" = 16 ] && [ "$da" -gt 0 ] && [ "$db" -gt 0 ]; then
  pass "sessions are spread over both DMZ routers"
else
  fail "sessions over the DMZ routers (ok $ok/16, dmz-a $da, dmz-b $db)"
fi
if [ "$ok" = 16 ] && [ "$la" -gt 0 ] && [ "$lb" -gt 0 ]; then
  pass "sessions are spread over both LAN routers"
else
  fail "sessions over the LAN routers (ok $ok/16, lan-a $la, lan-b $lb)"
fi

say "== real client addresses through the PROXY protocol"
if grep -q "CONNECT FROM.*host $NET.10/" "$WORK/dmz-a/saprouter.log" "$WORK/dmz-b/saprouter.log" \
  && ! grep -q "CONNECT FROM.*host $VIP/" "$WORK/dmz-a/saprouter.log" "$WORK/dmz-b/saprouter.log"; then
  pass "the DMZ -G logs show the client $NET.10, never the balancer $VIP"
  grep -h "CONNECT FROM.*host $NET.10/" "$WORK/dmz-a/saprouter.log" "$WORK/dmz-b/saprouter.log" | head -1 | sed 's/^/    /'
else
  fail "the DMZ -G logs do not show the client's address"
  grep -h "CONNECT FROM" "$WORK"/dmz-*/saprouter.log | head -3 | sed 's/^/    /'
fi
if niping_once client-b; then
  fail "client-b ($NET.11) was routed although the table denies it"
else
  if grep -q -- "-94\|permission denied" "$WORK/niping.out" \
    && grep -q "PERM DENIED.*$NET.11" "$WORK/dmz-a/saprouter.log" "$WORK/dmz-b/saprouter.log"; then
    pass "a table line on the client address decides: $NET.11 denied (-94), $NET.10 permitted"
  else
    fail "client-b refused, but not by the table line on its address"
    sed 's/^/    /' "$WORK/niping.out"
  fi
fi

say "== SIGKILL of LAN router A"
# Four long sessions: the balancer gives each DMZ router two, and each DMZ router gives
# its two to the LAN router with fewer sessions, so each LAN router holds two.
long_session() {
  in_ns client-a timeout 60 "$NIPING_BIN" -c -H "$ROUTE" -L 50 -D 100 >"$WORK/long-$1.out" 2>&1
}
la0=$(connects lan-a); lb0=$(connects lan-b)
LONG=()
for n in 1 2 3 4; do
  long_session "$n" &
  LONG+=("$!")
  wait_until 100 bash -c "[ \$(( \$(grep -c 'CONNECT FROM.*host $NET\.' $WORK/lan-a/saprouter.log) + \$(grep -c 'CONNECT FROM.*host $NET\.' $WORK/lan-b/saprouter.log) )) -ge $((la0 + lb0 + n)) ]" || true
done
if [ "$(connects lan-a)" -eq $((la0 + 2)) ] && [ "$(connects lan-b)" -eq $((lb0 + 2)) ]; then
  pass "four long sessions: two on each LAN router (fewest sessions first, per DMZ router)"
else
  fail "the long sessions did not spread (lan-a $la0 -> $(connects lan-a), lan-b $lb0 -> $(connects lan-b))"
fi
KILL_AT=$(now_ms)
kill9 lan-a
first_ok=""
for _ in $(seq 100); do
  if niping_once client-a; then first_ok=$(( $(now_ms) - KILL_AT )); break; fi
  sleep 0.05
done
if [ -n "$first_ok" ] && [ "$first_ok" -le 1000 ]; then
  pass "a new session succeeded ${first_ok} ms after LAN router A was killed (limit: 1 s)"
else
  fail "no new session within 1 s of killing LAN router A (first success after ${first_ok:-never} ms)"
fi
completed=0
for pid in "${LONG[@]}"; do
  if wait "$pid"; then completed=$((completed + 1)); fi
done
if [ "$completed" -eq 2 ]; then
  pass "the two sessions on LAN router B ran to their end; only the two on A ended"
else
  fail "long sessions completed: $completed of 4 (want the two on LAN router B)"
  for n in 1 2 3 4; do tail -n 3 "$WORK/long-$n.out" | sed "s/^/    $n: /"; done
fi

say "== LAN router A restarted"
restarted_takes_sessions start_lan lan-a "LAN router A"

say "== SIGKILL of DMZ router A"
KILL_AT=$(now_ms)
kill9 dmz-a
# Sessions for 3 s: long enough for haproxy to mark the router down (2 checks, 1 s apart).
failures=0; total=0; first_ok=""
while [ $(( $(now_ms) - KILL_AT )) -lt 3000 ]; do
  total=$((total + 1))
  if niping_once client-a; then
    [ -n "$first_ok" ] || first_ok=$(( $(now_ms) - KILL_AT ))
  else
    failures=$((failures + 1))
  fi
done
# A connect refused by the dead router is redispatched to the other one at once.
if [ -n "$first_ok" ] && [ "$first_ok" -le 1000 ]; then
  pass "a new session through the balancer succeeded ${first_ok} ms after DMZ router A was killed (check interval 1 s); $failures of $total failed in 3 s"
else
  fail "no session through the balancer within the check interval (${first_ok:-never} ms, $failures of $total failed)"
fi

say "== DMZ router A restarted"
restarted_takes_sessions start_dmz dmz-a "DMZ router A"
if wait_until 100 has_instances dmz-a 2; then
  pass "both LAN routers registered again with DMZ router A"
else
  fail "DMZ router A holds $(instances dmz-a) instances after its restart (want 2)"
fi

say "== a rogue LAN router outside the ACE list"
start_lan rogue
if wait_until 100 grep -q "registration refused" "$WORK/dmz-a/dev_rout" "$WORK/dmz-b/dev_rout"; then
  pass "the rogue LAN router ($NET.23) registering $PSEUDO/5002 is refused"
  grep -h "registration refused" "$WORK/dmz-a/dev_rout" "$WORK/dmz-b/dev_rout" | head -1 | cut -c1-200 | sed 's/^/    /'
else
  fail "the rogue LAN router's registration was not refused"
fi
for _ in $(seq 10); do niping_once client-a || true; done
if [ "$(connects rogue)" = 0 ]; then
  pass "the rogue LAN router never received a session"
else
  fail "the rogue LAN router received $(connects rogue) sessions"
fi

say ""
say "ha-scenario: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
