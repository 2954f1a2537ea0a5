#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/<target>/ from the test vectors of
docs/protocol.md section 7 and the hostile inputs of docs/hardening.md.
Run from fuzz/: python3 make_seeds.py (idempotent; the files are committed)."""
import os, struct

def hexdump(text):
    out = bytearray()
    for line in text.strip().splitlines():
        body = line.split(":", 1)[1]
        body = body[:49]  # hex columns only
        out += bytes.fromhex(body.replace(" ", ""))
    return bytes(out)

def unframe(b):
    return b[4:]

def frame(p):
    return struct.pack(">I", len(p)) + p

V71 = hexdump("""
0000: 00 00 00 47 4e 49 5f 52 4f 55 54 45 00 02 28 02
0010: 00 00 00 01 00 00 00 2f 00 00 00 1c 73 61 70 72
0020: 6f 75 74 65 72 2e 65 78 61 6d 70 6c 65 2e 63 6f
0030: 6d 00 33 32 39 39 00 00 31 39 32 2e 31 36 38 2e
0040: 38 38 2e 37 00 33 33 30 30 00 00
""")
V72 = hexdump("""
0000: 00 00 00 3b 4e 49 5f 52 4f 55 54 45 00 02 28 02
0010: 01 00 00 01 00 00 00 23 00 00 00 0e 38 2e 38 2e
0020: 38 2e 38 00 33 32 39 39 00 00 31 30 2e 30 2e 30
0030: 2e 31 00 33 32 30 30 00 53 33 63 72 33 74 00
""")
V73 = hexdump("""
0000: 00 00 00 36 4e 49 5f 52 4f 55 54 45 00 02 27 02
0010: 00 00 00 01 00 00 00 1e 00 00 00 0f 31 30 2e 30
0020: 2e 30 2e 35 00 33 32 39 39 00 00 31 30 2e 30 2e
0030: 30 2e 39 00 33 32 30 30 00 00
""")
V75 = hexdump("""
0000: 00 00 01 02 4e 49 5f 52 54 45 52 52 00 28 00 00
0010: ff ff ff a3 00 00 00 ea 2a 45 52 52 2a 00 31 00
0020: 4e 65 74 77 6f 72 6b 20 70 61 63 6b 65 74 20 74
0030: 6f 6f 20 62 69 67 00 2d 39 33 00 4e 49 20 28 6e
0040: 65 74 77 6f 72 6b 20 69 6e 74 65 72 66 61 63 65
0050: 29 00 37 35 33 00 34 30 00 2f 62 61 73 2f 37 35
0060: 33 5f 52 45 4c 2f 73 72 63 2f 62 61 73 65 2f 6e
0070: 69 2f 6e 69 62 75 66 2e 63 70 70 00 32 39 36 31
0080: 00 4e 69 42 75 66 49 49 6e 3a 20 6d 65 73 73 61
0090: 67 65 20 6c 65 6e 67 74 68 20 31 36 35 31 32 36
00a0: 39 38 39 38 20 65 78 63 65 65 64 73 20 6d 61 78
00b0: 20 28 31 30 30 32 34 29 00 4d 6f 6e 20 41 70 72
00c0: 20 32 36 20 30 37 3a 32 39 3a 32 32 20 32 30 32
00d0: 31 00 00 00 00 33 00 53 41 50 72 6f 75 74 65 72
00e0: 20 34 30 2e 34 20 6f 6e 20 27 76 6d 2d 73 61 70
00f0: 72 6f 75 74 65 72 27 00 00 00 00 00 2a 45 52 52
0100: 2a 00 00 00 00 00
""")
V76 = hexdump("""
0000: 00 00 00 e8 4e 49 5f 52 54 45 52 52 00 28 00 00
0010: ff ff ff fb 00 00 00 d0 2a 45 52 52 2a 00 31 00
0020: 63 6f 6e 6e 65 63 74 69 6f 6e 20 74 69 6d 65 64
0030: 20 6f 75 74 00 2d 35 00 4e 49 20 28 6e 65 74 77
0040: 6f 72 6b 20 69 6e 74 65 72 66 61 63 65 29 00 37
0050: 32 31 00 34 30 00 6e 69 72 6f 75 74 2e 63 70 70
0060: 00 36 37 30 34 00 52 54 50 45 4e 44 4c 49 53 54
0070: 3a 3a 74 69 6d 65 6f 75 74 50 65 6e 64 3a 20 6e
0080: 6f 20 72 6f 75 74 65 20 72 65 63 65 69 76 65 64
0090: 20 77 69 74 68 69 6e 20 35 73 20 28 43 4f 4e 4e
00a0: 45 43 54 45 44 29 00 54 68 75 20 4a 61 6e 20 20
00b0: 31 20 30 30 3a 30 30 3a 30 30 20 32 30 31 35 00
00c0: 00 00 00 31 00 53 41 50 72 6f 75 74 65 72 20 34
00d0: 30 2e 34 20 6f 6e 20 27 68 6f 73 74 27 00 00 00
00e0: 00 00 2a 45 52 52 2a 00 00 00 00 00
""")
V77 = hexdump("""
0000: 00 00 00 18 4e 49 5f 52 54 45 52 52 00 28 01 00
0010: 00 00 00 00 00 00 00 00 2a 45 52 52
""")
V78 = hexdump("""
0000: 00 00 00 18 4e 49 5f 52 54 45 52 52 00 02 00 00
0010: ff ff ff a2 00 00 00 00 00 00 00 00
""")
A_INFO = hexdump("""
0000: 00 00 00 22 52 4f 55 54 45 52 5f 41 44 4d 00 28
0010: 02 00 00 73 65 63 72 65 74 00 00 00 00 00 00 00
0020: 00 00 00 00 00 00
""")
A_MSF = hexdump("""
0000: 00 00 00 0f 52 4f 55 54 45 52 5f 41 44 4d 00 26
0010: 02 00 00
""")
A_CANCEL = hexdump("""
0000: 00 00 00 19 52 4f 55 54 45 52 5f 41 44 4d 00 28
0010: 06 00 00 00 02 00 00 00 01 00 00 00 02
""")
A_TRACE = hexdump("""
0000: 00 00 00 15 52 4f 55 54 45 52 5f 41 44 4d 00 28
0010: 0c 00 00 00 01 00 00 00 03
""")
A_PEER = b"ROUTER_ADM\x00\x28\x0a" + b"10.0.0.*".ljust(32, b"\x00")
A_STOP = b"ROUTER_ADM\x00\x28\x05\x00\x00"
PING = b"NI_PING\x00"
PONG = b"NI_PONG\x00"

def route(hops, talk=0, entries=None, rest=None, offset=None, length=None, ver=40):
    s = b"".join(h + b"\0" + sv + b"\0" + pw + b"\0" for h, sv, pw in hops)
    first = len(hops[0][0]) + len(hops[0][1]) + len(hops[0][2]) + 3 if hops else 0
    e = len(hops) if entries is None else entries
    r = (len(hops) - 1) if rest is None else rest
    return (b"NI_ROUTE\0" + bytes([2, ver, e & 255, talk, 0, 0, r & 255]) +
            struct.pack(">II", len(s) if length is None else length,
                        first if offset is None else offset) + s)

seeds = {
    "ni_route": {
        "v71": unframe(V71), "v72": unframe(V72), "v73": unframe(V73),
        "three_hops": route([(b"r1", b"3299", b""), (b"r2", b"3299", b"pw"), (b"10.0.0.1", b"sapdp00", b"")]),
        "h12_truncated": b"NI_ROUTE\0\x02\x00\x05",
        "h13_one_entry": route([(b"a", b"1", b"")]),
        "h14_entries_lie": route([(b"ab", b"1", b""), (b"cd", b"2", b"")], entries=255),
        "h15_rest_zero": route([(b"ab", b"1", b""), (b"cd", b"2", b"")], rest=0),
        "h18_len_max": route([(b"ab", b"1", b""), (b"cd", b"2", b"")], length=0xFFFFFFFF),
        "h19_offset_mid": route([(b"ab", b"1", b""), (b"cd", b"2", b"")], offset=3),
        "h20_version0": route([(b"ab", b"1", b""), (b"cd", b"2", b"")], ver=0),
        "h24_unterminated": route([(b"ab", b"1", b""), (b"cd", b"2", b"")])[:-1],
        "h27_controls": route([(b"ab", b"1", b""), (b"%s%n\r\nFAKE", b"2", b"")]),
    },
    "ni_admin": {
        "info": unframe(A_INFO), "msf_info": unframe(A_MSF), "cancel": unframe(A_CANCEL),
        "trace": unframe(A_TRACE), "peer": A_PEER, "stop": A_STOP,
        "h38_cancel_lies": b"ROUTER_ADM\0\x28\x06\0\0\xff\xff",
        "h39_trace_bomb": b"ROUTER_ADM\0\x28\x0c\xff\xff\xff\xff",
        "h42_truncated": b"ROUTER_ADM\0\x28",
        "client_record": struct.pack(">IB", 7, 3) + bytes(8) + b"10.1.2.3".ljust(45, b"\0") + b"10.0.0.1".ljust(45, b"\0") + b"3200".ljust(27, b"\0") + bytes(7),
        "server_record": bytes.fromhex("000004d2000000000000000059000000 0ce30000".replace(" ", "")),
    },
    "ni_rterr": {
        "v75": unframe(V75), "v76": unframe(V76), "v77": unframe(V77), "v78": unframe(V78),
        "h45_text_len_lies": b"NI_RTERR\0\x28\x00\x00\xff\xff\xff\xa3\xff\xff\xff\xff",
        "h44_snc": b"NI_RTERR\0\x28\x46\x00" + bytes(8) + b"SNCFRAME",
        "record_only": unframe(V75)[20:-4],
    },
    "ni_frame": {
        # 2 bytes max length, 1 byte chunk size, then the stream.
        "pings": b"\x27\x28\x05" + frame(PING) + frame(PONG) + frame(b""),
        "route_and_data": b"\x27\x28\x01" + V71 + frame(b"early-bird"),
        "h1_zero": b"\x27\x28\x03" + bytes(4),
        "h2_max": b"\xff\xff\x07\xff\xff\xff\xff",
        "h3_10025": b"\x27\x28\x01\x00\x00\x27\x29",
        "h4_http": b"\x27\x28\x10GET / HTTP/1.0\r\n\r\n",
        "h5_tls": b"\x27\x28\x08\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "split_header": b"\x00\x40\x01\x00\x00\x00\x03SAP\x00\x00\x00\x00",
    },
    "routestr": {
        "gui": b"/H/saprouter/S/3299/H/10.0.0.1/S/3200",
        "pw": b"/H/r1/W/pw/H/target",
        "old_p": b"/H/rt/H/target/P/pw",
        "lower": b"/h/a1/s/1/w/x/H/b2/",
        "ipv6": b"/H/[::1]/S/sapdp00/H/app/S/sapgw99s",
        "bad_tag": b"/H/a/R/sys",
        "services": b"sapdp 3200/tcp sapdp00 # comment\nfoo 99999/tcp\n",
    },
    "routtab": {
        "permit_all": b"P * * *\n",
        "sap_example": (b"# comment\nP0,1 10.0.0.1 host2 sapdp00 secret\nS 10.0.0.0/24 * 3200.3298\n"
                        b"D 156.56.1011xxxx.* * *\nP *.*.*.* 192.168.*.* sapgw00\n"
                        b"KT \"p:CN=host1, O=fuzz\" host1 3299\nKP \"p:CN=*\" * *\nKD * * *\n"
                        b"P six none telnet\nD * * *\n"),
        "crlf": b"P * * 3200\r\nD * * *\r\n",
        "bad_mask": b"P 10.0.0.0/33 * *\nP 1.2.3.123456789x.* * *\n",
        "ipv6": b"P ::1 2001:db8::/32 1.65535 *\nS * [::ffff:10.0.0.1] *\n",
    },
}

REGISTER = (b"RI_REGISTER\0" + bytes([1]) + bytes([1, 2, 3, 4, 5, 6, 7, 8]) + b"\x00\x02"
            + struct.pack(">H", 5002) + bytes([1, 3]) + bytes([4, 10, 18, 0, 2]) + bytes([6])
            + bytes.fromhex("20010db8000000000000000000000002") + b"N" + bytes([11]) + b"lan.example")
seeds["ri_link"] = {
    "register": REGISTER,
    "accept": b"RI_ACCEPT\0\x01\x00\x03\x00\x07\x0a\x0b\x0c\x0d",
    "refusal": unframe(V78),
    "refusal_record": unframe(V75),
}
seeds["ri_params"] = {
    "cf1": open("../routtab-samples/reverse-invoke/cf1", "rb").read(),
    "cf2": open("../routtab-samples/reverse-invoke/cf2", "rb").read(),
    "client_full": (b"client = 1\nclient_service = sapgw00\nclient_hostname=127.0.0.1\n"
                    b"ACE = P 10.0.0.0/8\nACE = D ::/0\nmax_servers=2\nconn_pool_size = 3\n"
                    b"listen_protocol = IPv6\nexclusive = no\nconnect_timeout = 2000\n"
                    b"route = /H/a/S/1/H/b/S/2\n"),
    "server": (b"server = 1\nclient_hostname = dmz.example\nclient_service = 5001\n"
               b"reg_hostname = lan\nreg_service = 5002\nretry_timeout = 10000\n"
               b"conn_on_demand = yes\n"),
}

# ri_linkmux (src/ri/linkmux/fuzzing.rs): a setup byte (bit 0 role: 0 DMZ, 1 LAN; bits 1-2
# streams accepted from the peer), then 10-byte ops: op, a[0] (stream pick), 3 spare bytes,
# a[4], n = a[5..9]. Ops: 0 open, 1 queue, 2 close_write, 3 taken, 4 release, 5 drain a[0]
# frames (0: all), 6 peer header a, 7 peer header a on the picked stream.
LM_DATA, LM_WINDOW, LM_OPEN, LM_FIN, LM_RESET = range(5)

def lm_setup(lan, accept):
    return bytes([(1 if lan else 0) | (accept << 1)])

def lm(o, pick=0, n=0, k=0):
    return bytes([o, pick, 0, 0, 0, k]) + struct.pack(">I", n)

def lm_peer(stream, k, length):
    return b"\x06" + struct.pack(">IBI", stream, k, length)

def lm_on(pick, k, length):
    return lm(7, pick, length, k)

LM_OPEN_OP, LM_DRAIN_ALL = lm(0), lm(5)
seeds["ri_linkmux"] = {
    # DMZ opens 1, queues more than a window: OPEN, 4 DATA, stuck; the peer's WINDOW lets
    # the rest go. The peer opens 2 and sends half a window; taking it returns a WINDOW.
    "open_data_window": (lm_setup(False, 2) + LM_OPEN_OP + lm(1, 0, 300000) + LM_DRAIN_ALL
                         + lm_on(0, LM_WINDOW, 131072) + LM_DRAIN_ALL
                         + lm_peer(2, LM_OPEN, 0) + lm_peer(2, LM_DATA, 65536)
                         + lm_peer(2, LM_DATA, 65536) + lm(3, 1, 131072) + LM_DRAIN_ALL
                         + lm(2, 0) + LM_DRAIN_ALL + lm_peer(1, LM_FIN, 0) + lm(4, 0)
                         + lm_peer(2, LM_FIN, 0) + lm(2, 1) + lm(4, 1) + LM_DRAIN_ALL),
    # LAN accepts one stream: 3 and 5 are refused (RESET 1), data on 3 is dropped; once 1
    # is released (RESET 0), 7 is accepted.
    "refused_open": (lm_setup(True, 1) + lm_peer(1, LM_OPEN, 0) + lm_peer(3, LM_OPEN, 0)
                     + LM_DRAIN_ALL + lm_peer(3, LM_DATA, 100) + lm_peer(5, LM_OPEN, 0)
                     + lm(4, 0) + LM_DRAIN_ALL + lm_peer(7, LM_OPEN, 0) + LM_DRAIN_ALL),
    "refused_none_accepted": lm_setup(False, 0) + lm_peer(2, LM_OPEN, 0) + lm(5, 1),
    # The peer resets a stream with bytes in flight; a stream released with bytes queued
    # sends them, then RESET; the peer's late frames on gone streams are dropped.
    "reset": (lm_setup(False, 1) + LM_OPEN_OP + LM_OPEN_OP + lm(1, 0, 1000) + lm(5, 2)
              + lm_on(0, LM_RESET, 0) + lm(1, 0, 10) + lm_on(0, LM_DATA, 10) + lm(4, 0)
              + lm(1, 1, 5000) + lm(4, 1) + LM_DRAIN_ALL + lm_on(1, LM_WINDOW, 5000)
              + lm_on(1, LM_RESET, 1) + LM_DRAIN_ALL),
    "half_close": (lm_setup(True, 3) + LM_OPEN_OP + lm(2, 0) + LM_DRAIN_ALL
                   + lm_on(0, LM_DATA, 65536) + lm(3, 0, 65536) + lm(3, 0, 65536)
                   + lm_on(0, LM_FIN, 0) + lm(4, 0) + LM_DRAIN_ALL),
    # Headers that end the link.
    "bad_kind_5": lm_setup(False, 1) + lm_peer(2, 5, 0),
    "bad_kind_ff": lm_setup(True, 1) + lm_peer(1, 0xff, 0xffffffff),
    "bad_stream_zero": lm_setup(False, 1) + lm_peer(0, LM_OPEN, 0),
    "bad_data_len_0": lm_setup(False, 1) + LM_OPEN_OP + lm_on(0, LM_DATA, 0),
    "bad_data_len_max": lm_setup(False, 1) + LM_OPEN_OP + lm_on(0, LM_DATA, 65537),
    "bad_window_0": lm_setup(False, 1) + LM_OPEN_OP + lm_on(0, LM_WINDOW, 0),
    "bad_window_credit": lm_setup(False, 1) + LM_OPEN_OP + lm_on(0, LM_WINDOW, 1),
    "bad_open_len": lm_setup(False, 1) + lm_peer(2, LM_OPEN, 1),
    "bad_open_parity": lm_setup(False, 1) + lm_peer(1, LM_OPEN, 0),
    "bad_open_order": lm_setup(False, 3) + lm_peer(4, LM_OPEN, 0) + lm_peer(2, LM_OPEN, 0),
    "bad_unknown": lm_setup(True, 1) + lm_peer(9, LM_DATA, 1),
    "bad_overrun": (lm_setup(True, 1) + lm_peer(1, LM_OPEN, 0)
                    + lm_on(0, LM_DATA, 65536) * 4 + lm_on(0, LM_DATA, 1)),
    "bad_after_fin": lm_setup(True, 1) + lm_peer(1, LM_OPEN, 0) + lm_on(0, LM_FIN, 0) + lm_on(0, LM_DATA, 5),
}

def pp2(ver_cmd, fam, body):
    return b"\r\n\r\n\0\r\nQUIT\n" + bytes([ver_cmd, fam]) + struct.pack(">H", len(body)) + body

TCP4 = bytes([192, 0, 2, 10, 198, 51, 100, 1]) + struct.pack(">HH", 40000, 3299)
TCP6 = (bytes.fromhex("20010db8000000000000000000000007") + bytes.fromhex("20010db8000000000000000000000001")
        + struct.pack(">HH", 40000, 3299))
TLVS = b"\x02\x00\x0bexample.com" + b"\x05\x00\x04\x01\x02\x03\x04" + b"\x04\x00\x02\x00\x00"
ROUTE = frame(b"NI_ROUTE\0")
seeds["proxy_header"] = {
    "v1_tcp4": b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 3299\r\n" + ROUTE,
    "v1_tcp6": b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 3299\r\n",
    "v1_unknown": b"PROXY UNKNOWN\r\n",
    "v1_unknown_addrs": b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
    "v1_haproxy_check": b"PROXY TCP4 127.0.0.2 127.0.0.1 55926 29912\r\n",
    "v1_truncated": b"PROXY TCP4 192.0.2.10 198.5",
    "v1_no_crlf": b"PROXY TCP4 " + b"1" * 120,
    "v1_bad_port": b"PROXY TCP4 192.0.2.10 198.51.100.1 040000 3299\r\n",
    "v1_cr_only": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
    "v2_tcp4": pp2(0x21, 0x11, TCP4) + b"\x16\x03\x01",
    "v2_tcp6": pp2(0x21, 0x21, TCP6),
    "v2_tlvs": pp2(0x21, 0x11, TCP4 + TLVS),
    "v2_local": pp2(0x20, 0x00, b""),
    "v2_local_addrs": pp2(0x20, 0x11, TCP4),
    "v2_unspec": pp2(0x21, 0x00, b""),
    "v2_unix": pp2(0x21, 0x31, b"/tmp/a".ljust(108, b"\0") + b"/tmp/b".ljust(108, b"\0")),
    "v2_dgram": pp2(0x21, 0x12, TCP4),
    "v2_family_4": pp2(0x21, 0x41, TCP4),
    "v2_version_3": pp2(0x31, 0x11, TCP4),
    "v2_short_addrs": pp2(0x21, 0x21, TCP4),
    "v2_truncated": pp2(0x21, 0x11, TCP4)[:20],
    "v2_len_65535": pp2(0x21, 0x11, TCP4)[:14] + b"\xff\xff" + TCP4,
    "v2_len_4081": pp2(0x21, 0x11, TCP4)[:14] + struct.pack(">H", 4081) + TCP4,
    "plain_route": ROUTE,
}

for target, files in seeds.items():
    d = os.path.join("seeds", target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
print("seeds written")
