"""Drives a running saprouter with pysap, an independent implementation of SAP's NI and router
protocols. The Rust test tests/interop.rs starts the router and the echo targets and passes
their ports in the environment. Prints PASS/FAIL per check; exit status 1 if any failed."""
import os
import socket
import sys

from scapy.packet import Raw, raw
from pysap.SAPNI import SAPNI, SAPNIStreamSocket
from pysap.SAPRouter import (SAPRouter, SAPRouterRouteHop, SAPRoutedStreamSocket,
                             SAPRouteException, SAPRouterInfoClients, SAPRouterInfoServer,
                             get_router_version)

HOST = "127.0.0.1"
ENV = os.environ
PORT = int(ENV["ROUTER_PORT"])
NI_ECHO = int(ENV["NI_ECHO"])
RAW_ECHO = int(ENV["RAW_ECHO"])
CLOSED = int(ENV["CLOSED"])
INFO_PW = ENV["INFO_PW"]
failures = []


def check(name, ok, detail=""):
    print("%s %s %s" % ("PASS" if ok else "FAIL", name, detail), flush=True)
    if not ok:
        failures.append(name)


def routed(port, talk_mode=0, password=None, keep_alive=True):
    hops = [SAPRouterRouteHop(hostname=HOST, port=str(PORT)),
            SAPRouterRouteHop(hostname=HOST, port=str(port), password=password)]
    sock = socket.create_connection((HOST, PORT), timeout=10)
    return SAPRoutedStreamSocket(sock, hops, talk_mode=talk_mode, router_version=40,
                                 keep_alive=keep_alive)


def run(name, fn):
    try:
        fn()
    except Exception as exc:  # a check that raises has failed
        check(name, False, "raised %s: %s" % (type(exc).__name__, exc))


def version():
    ni = SAPNIStreamSocket.get_nisocket(HOST, PORT, timeout=10)
    v = get_router_version(ni)
    ni.close()
    check("version", v == 40, "router NI version %d" % v)


def ni_route():
    ni = routed(NI_ECHO)
    bad = []
    for n in (1, 5000, 10025, 300000):
        data = bytes(i % 256 for i in range(n))
        ni.send(Raw(data))
        if raw(ni.recv().payload) != data:
            bad.append(n)
    ni.close()
    check("ni_route", not bad, "wrong sizes %s" % bad)


def raw_route():
    ni = routed(RAW_ECHO, talk_mode=1)
    data = os.urandom(200000)
    ni.ins.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = ni.ins.recv(65536)
        if not chunk:
            break
        got += chunk
    ni.close()
    check("raw_route", got == data, "%d of %d bytes back" % (len(got), len(data)))


def denied():
    try:
        routed(CLOSED + 1).close()
        check("denied", False, "route accepted")
    except SAPRouteException as exc:
        # pysap raises SAPRouteException only for rc -94.
        check("denied", True, "route denied: %s" % exc)


def partner_not_reached():
    try:
        routed(CLOSED).close()
        check("partner_not_reached", False, "route accepted")
    except SAPRouteException:
        check("partner_not_reached", False, "reported as a denial, expected rc -92")
    except Exception as exc:  # pysap raises its generic error for rc != -94
        check("partner_not_reached", "-92" in str(exc) or "not reached" in str(exc), str(exc))


def password():
    routed(NI_ECHO + 0, password=None).close()
    try:
        routed(int(ENV["PW_ECHO"]), password="wrong").close()
        check("password", False, "wrong password accepted")
        return
    except SAPRouteException:
        pass
    routed(int(ENV["PW_ECHO"]), password="secret").close()
    check("password", True, "wrong refused, right accepted")


def info():
    ni = SAPNIStreamSocket.get_nisocket(HOST, PORT, timeout=10)
    ni.send(SAPRouter(type=SAPRouter.SAPROUTER_ADMIN, version=40, adm_command=2,
                      adm_password=INFO_PW))
    clients = SAPRouterInfoClients(raw(ni.recv().payload))
    server = SAPRouterInfoServer(raw(ni.recv().payload))
    lines = []
    while True:
        pkt = raw(ni.recv().payload)
        if not pkt:
            break
        lines.append(pkt.rstrip(b"\0").decode())
    ni.close()
    ok = (len(clients.clients) >= 1 and server.port == PORT and server.pid > 0
          and any(l.startswith("Total no. of clients:") for l in lines))
    addrs = [c.address for c in clients.clients]
    check("info", ok, "%d clients %r, port %d, lines %r" % (len(clients.clients), addrs, server.port, lines))


def info_wrong_password():
    ni = SAPNIStreamSocket.get_nisocket(HOST, PORT, timeout=10)
    ni.send(SAPRouter(type=SAPRouter.SAPROUTER_ADMIN, version=40, adm_command=2,
                      adm_password="wrong"))
    reply = SAPRouter(raw(ni.recv().payload))
    ni.close()
    check("info_wrong_password", reply.type == SAPRouter.SAPROUTER_ERROR,
          "rc %s" % getattr(reply, "return_code", None))


for name, fn in [("version", version), ("ni_route", ni_route), ("raw_route", raw_route),
                 ("denied", denied), ("partner_not_reached", partner_not_reached),
                 ("password", password), ("info", info),
                 ("info_wrong_password", info_wrong_password)]:
    run(name, fn)
print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
