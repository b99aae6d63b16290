#!/usr/bin/env python3
"""Blind evaluation captures for a flow-telemetry DDoS detector.

Written from the public specifications only:
  sFlow v5 (sflow.org/sflow_version_5.txt), NetFlow v5 (Cisco), NetFlow v9 (RFC 3954),
  IPFIX (RFC 7011, IE registry / RFC 7012).
Python 3 standard library only. Deterministic: every scenario has a fixed seed.

  python3 gen.py                 # all scenarios -> captures/*.pcap + truth.json
  python3 gen.py --only NAME ... # some of them (truth.json is always rewritten in full)
  python3 gen.py --list
"""
import argparse, bisect, json, math, os, random, struct, sys, time

T0 = 1762192800  # 2025-11-03T18:00:00Z: telemetry time of second 0 of every capture
HERE = os.path.dirname(os.path.abspath(__file__))

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
DF = 0x4000


def ip4(s):
    return bytes(int(x) for x in s.split('.'))


def ip6(s):
    import ipaddress
    return ipaddress.IPv6Address(s).packed


def mix32(x):
    x &= 0xffffffff
    x = ((x ^ (x >> 16)) * 0x45d9f3b) & 0xffffffff
    x = ((x ^ (x >> 16)) * 0x45d9f3b) & 0xffffffff
    return x ^ (x >> 16)


def poisson(rng, lam):
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    L = math.exp(-lam)
    k, p = 0, 1.0
    while True:
        p *= rng.random()
        if p < L:
            return k
        k += 1


def public_pool(rng, n, avoid=()):
    """n distinct-ish random public unicast IPv4 addresses (bytes)."""
    out = []
    while len(out) < n:
        a = rng.randrange(1, 224)
        if a in (10, 100, 127, 169, 172, 192, 198, 203) or a in avoid:
            continue
        out.append(bytes((a, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))))
    return out


def v6_pool(rng, n):
    out = []
    for _ in range(n):
        pfx = rng.choice((0x2a00, 0x2a01, 0x2a02, 0x2600, 0x2607, 0x2804, 0x2405, 0x2001))
        b = struct.pack('!HHHH', pfx, rng.randrange(65536), rng.randrange(65536), rng.randrange(65536))
        out.append(b + bytes(rng.randrange(256) for _ in range(8)))
    return out


# A packet: (t, v6, src, dst, proto, sport, dport, flags, iplen, ttl, fragfield, dirn, tos)
#   fragfield = IPv4 flags+fragment offset word (DF 0x4000, MF 0x2000, offset in 8-byte units)
#   dirn: 'i' towards the monitored network, 'o' away from it
#   for ICMP, sport = 0 and dport = type << 8 | code

# ---------------------------------------------------------------------------------------------
# Traffic components.  pps(t) = real (unsampled) packet rate; make(rng, t) = one packet.
# ---------------------------------------------------------------------------------------------

class Hosting:
    """Servers in a hosting network: ordinary TCP (ACK and PSH-ACK data 200-1500 B) and some UDP
    from a few thousand clients per host; optionally the servers' answers (direction 'o')."""

    def __init__(self, rng, hosts, mbps_range=(2, 37.5), clients=None, v6=False, nconn=400,
                 jitter=0.03, shape=None):
        self.hosts = hosts
        self.v6 = v6
        self.clients = clients
        self.nconn = nconn
        self.shape = shape or (lambda t: 1.0)
        rates = [rng.uniform(*mbps_range) for _ in hosts]
        self.mbps = rates
        self.cum = []
        s = 0.0
        for r in rates:
            s += r
            self.cum.append(s)
        self.total_mbps = s
        self.jit = {}
        self.jrng = random.Random(rng.random())
        self.jitter = jitter
        # mean frame size of the incoming mix, to turn Mbps into pps
        r2 = random.Random(1)
        n = 20000
        tot = 0
        for _ in range(n):
            tot += max(self._in_class(r2, 0, 0.0)[4] + 18, 64)
        self.mean_in = tot / n
        self.pps_in = self.total_mbps * 1e6 / 8 / self.mean_in

    def factor(self, t):
        sec = int(t)
        f = self.jit.get(sec)
        if f is None:
            f = self.jit[sec] = 1.0 + self.jitter * self.jrng.gauss(0, 1)
        return f * self.shape(t)

    def conn(self, rng, h, t):
        i = int(self.nconn * rng.random() ** 3)
        life = 5.0 + 300.0 / (1 + i / 3.0)
        ph = (mix32(h * 7919 + i) % 1000) / 1000.0 * life
        gen = int((t + ph) / life)
        k = mix32(h * 1000003 + i * 7919 + gen * 104729)
        ci = mix32(h * 131 + (k % 3000)) % len(self.clients)
        cport = 32768 + (k >> 8) % 28000
        r = (k >> 20) % 100
        sport = 443 if r < 70 else 80 if r < 90 else (22, 8443, 3306, 25, 993, 8080)[r % 6]
        return ci, cport, sport

    def _in_class(self, rng, h, t):
        """(proto, sport, dport, flags, iplen, extra) client -> server."""
        ipl = 60 if self.v6 else 40
        r = rng.random()
        if r < 0.46:
            return (TCP, 0, 0, ACK, 1500 if rng.random() < 0.2 else rng.randint(200, 1500), 0)
        if r < 0.78:
            return (TCP, 0, 0, PSH | ACK, 1500 if rng.random() < 0.2 else rng.randint(200, 1500), 0)
        if r < 0.90:
            return (TCP, 0, 0, ACK, ipl + 12, 0)               # bare ACK with timestamps
        if r < 0.912:
            return (TCP, 0, 0, SYN, ipl + 20, 0)               # SYN with options
        if r < 0.920:
            return (TCP, 0, 0, FIN | ACK, ipl + 12, 0)
        if r < 0.924:
            return (TCP, 0, 0, RST | ACK, ipl, 0)
        if r < 0.975:
            return (UDP, 0, 443, 0, rng.randint(1200, 1350), 1)  # QUIC
        if r < 0.985:
            return (UDP, 0, 53, 0, rng.randint(60, 100), 1)      # DNS queries
        if r < 0.998:
            return (UDP, 0, (123, 5060, 27015, 1194, 3478)[int(rng.random() * 5)], 0,
                    rng.randint(80, 400), 1)
        return (ICMP6 if self.v6 else ICMP, 0, 0, 0, 84, 2)

    def _out_class(self, rng, h, t):
        ipl = 60 if self.v6 else 40
        r = rng.random()
        if r < 0.40:
            return (TCP, 0, 0, ACK, 1500 if rng.random() < 0.7 else rng.randint(200, 1500), 0)
        if r < 0.55:
            return (TCP, 0, 0, PSH | ACK, rng.randint(200, 1500), 0)
        if r < 0.92:
            return (TCP, 0, 0, ACK, ipl + 12, 0)
        if r < 0.932:
            return (TCP, 0, 0, SYN | ACK, ipl + 20, 0)
        if r < 0.940:
            return (TCP, 0, 0, FIN | ACK, ipl + 12, 0)
        if r < 0.944:
            return (TCP, 0, 0, RST, ipl, 0)
        if r < 0.990:
            return (UDP, 443, 0, 0, rng.randint(60, 1350), 1)
        if r < 0.999:
            return (UDP, 53, 0, 0, rng.randint(80, 500), 1)
        return (ICMP6 if self.v6 else ICMP, 0, 0, 0, 84, 3)

    def pick_host(self, rng):
        return bisect.bisect_left(self.cum, rng.random() * self.total_mbps)

    def make_in(self, rng, t):
        h = self.pick_host(rng)
        ci, cport, sport = self.conn(rng, h, t)
        proto, sp, dp, flags, iplen, kind = self._in_class(rng, h, t)
        src = self.clients[ci]
        ttl = (64 if ci % 3 else 128) - 8 - ci % 17
        if kind == 0:
            return (t, self.v6, src, self.hosts[h], proto, cport, sport, flags, iplen, ttl, DF, 'i', 0)
        if kind == 1:
            return (t, self.v6, src, self.hosts[h], proto, cport, dp, 0, iplen, ttl, DF, 'i', 0)
        return (t, self.v6, src, self.hosts[h], proto, 0, (128 if proto == ICMP6 else 8) << 8, 0,
                iplen, ttl, 0, 'i', 0)

    def make_out(self, rng, t):
        h = self.pick_host(rng)
        ci, cport, sport = self.conn(rng, h, t)
        proto, sp, dp, flags, iplen, kind = self._out_class(rng, h, t)
        dst = self.clients[ci]
        if kind == 0:
            return (t, self.v6, self.hosts[h], dst, proto, sport, cport, flags, iplen, 64, DF, 'o', 0)
        if kind == 1:
            return (t, self.v6, self.hosts[h], dst, proto, sp, cport, 0, iplen, 64, DF, 'o', 0)
        return (t, self.v6, self.hosts[h], dst, proto, 0, (129 if proto == ICMP6 else 0) << 8, 0,
                iplen, 64, 0, 'o', 0)

    def comps(self, out=True, out_ratio=0.9):
        c = [(lambda t: self.pps_in * self.factor(t), self.make_in)]
        if out:
            c.append((lambda t: self.pps_in * out_ratio * self.factor(t), self.make_out))
        return c


class Eyeball:
    """Residential subscribers: downloads (TCP 443/80 data) and QUIC in, ACKs and QUIC acks out,
    DNS to/from resolvers, some gaming UDP; the evening ramp multiplies everything by `ramp`."""

    def __init__(self, rng, subs, T, mean_mbps=1.0, ramp=2.0, cdn=None, resolvers=None):
        self.subs = subs
        w = [min(math.exp(rng.gauss(0, 1.6)), 150.0) for _ in subs]
        self.cum = []
        s = 0.0
        for x in w:
            s += x
            self.cum.append(s)
        self.tw = s
        self.cdn = cdn
        self.resolvers = resolvers
        self.T = T
        self.ramp = ramp
        self.mean_in = 1180.0
        self.pps0 = len(subs) * mean_mbps * 1e6 / 8 / self.mean_in
        self.jrng = random.Random(rng.random())
        self.jit = {}

    def factor(self, t):
        sec = int(t)
        f = self.jit.get(sec)
        if f is None:
            f = self.jit[sec] = 1.0 + 0.03 * self.jrng.gauss(0, 1)
        return f * (1.0 + (self.ramp - 1.0) * t / self.T)

    def pick(self, rng):
        return bisect.bisect_left(self.cum, rng.random() * self.tw)

    def server(self, rng, s, t):
        i = int(40 * rng.random() ** 2)
        gen = int((t + (mix32(s * 31 + i) % 600)) / (20 + 200 / (1 + i)))
        k = mix32(s * 1000003 + i * 7919 + gen * 15485863)
        # CDN addresses are Zipf-popular: a few thousand servers carry most bytes
        ci = int(len(self.cdn) * ((k % 10007) / 10007.0) ** 3)
        return ci, 32768 + (k >> 4) % 28000

    def make_in(self, rng, t):
        s = self.pick(rng)
        ci, cport = self.server(rng, s, t)
        src = self.cdn[ci]
        dst = self.subs[s]
        ttl = 64 - 6 - ci % 12
        r = rng.random()
        if r < 0.62:
            return (t, False, src, dst, TCP, 443 if ci % 5 else 80, cport, ACK if rng.random() < 0.8 else PSH | ACK,
                    1500 if rng.random() < 0.85 else rng.randint(200, 1500), ttl, DF, 'i', 0)
        if r < 0.85:
            return (t, False, src, dst, UDP, 443, cport, 0, rng.randint(1200, 1350), ttl, DF, 'i', 0)
        if r < 0.93:
            return (t, False, src, dst, TCP, 443, cport, ACK, 52, ttl, DF, 'i', 0)
        if r < 0.935:
            return (t, False, src, dst, TCP, 443, cport, SYN | ACK, 60, ttl, DF, 'i', 0)
        if r < 0.94:
            return (t, False, src, dst, TCP, 443, cport, FIN | ACK, 52, ttl, DF, 'i', 0)
        if r < 0.955:
            res = self.resolvers[mix32(s) % len(self.resolvers)]
            return (t, False, res, dst, UDP, 53, cport, 0, rng.randint(60, 512), 57, 0, 'i', 0)
        if r < 0.998:
            return (t, False, src, dst, UDP, (3074, 27015, 9308, 50000, 3478)[ci % 5], cport, 0,
                    rng.randint(60, 300), ttl, 0, 'i', 0)
        return (t, False, src, dst, ICMP, 0, 0, 0, 84, ttl, 0, 'i', 0)

    def make_out(self, rng, t):
        s = self.pick(rng)
        ci, cport = self.server(rng, s, t)
        dst = self.cdn[ci]
        src = self.subs[s]
        r = rng.random()
        if r < 0.62:
            return (t, False, src, dst, TCP, cport, 443 if ci % 5 else 80, ACK, 52, 64, DF, 'o', 0)
        if r < 0.87:
            return (t, False, src, dst, UDP, cport, 443, 0, rng.randint(60, 120), 64, DF, 'o', 0)
        if r < 0.93:
            return (t, False, src, dst, TCP, cport, 443, PSH | ACK, rng.randint(100, 1500), 64, DF, 'o', 0)
        if r < 0.945:
            return (t, False, src, dst, TCP, cport, 443, SYN, 60, 64, DF, 'o', 0)
        if r < 0.95:
            return (t, False, src, dst, TCP, cport, 443, FIN | ACK, 52, 64, DF, 'o', 0)
        if r < 0.975:
            res = self.resolvers[mix32(s) % len(self.resolvers)]
            return (t, False, src, res, UDP, cport, 53, 0, rng.randint(60, 90), 64, 0, 'o', 0)
        return (t, False, src, dst, UDP, cport, (3074, 27015, 9308, 50000, 3478)[ci % 5], 0,
                rng.randint(60, 300), 64, 0, 'o', 0)

    def comps(self, out_ratio=0.45):
        return [(lambda t: self.pps0 * self.factor(t), self.make_in),
                (lambda t: self.pps0 * out_ratio * self.factor(t), self.make_out)]


def window(start, end, pps, rise=0.0):
    def f(t):
        if t < start or t >= end:
            return 0.0
        if rise and t < start + rise:
            return pps * max(0.2, (t - start) / rise)
        return pps
    return f


class Download:
    """One legitimate big download: a CDN server -> one subscriber over a few TCP connections,
    with the subscriber's ACKs out (about one per two data segments)."""

    def __init__(self, src, dst, mbps, start, end):
        self.src, self.dst = src, dst
        self.pps = mbps * 1e6 / 8 / 1518
        self.start, self.end = start, end

    def make_in(self, rng, t):
        return (t, False, self.src, self.dst, TCP, 443, 50000 + int(rng.random() * 4), ACK if rng.random() < 0.9 else PSH | ACK,
                1500, 55, DF, 'i', 0)

    def make_out(self, rng, t):
        return (t, False, self.dst, self.src, TCP, 50000 + int(rng.random() * 4), 443, ACK, 52, 64, DF, 'o', 0)

    def comps(self):
        return [(window(self.start, self.end, self.pps), self.make_in),
                (window(self.start, self.end, self.pps / 2), self.make_out)]


class FlashCrowd:
    """Legitimate flash crowd at one web server: new connections/s ramps from c0 to c1 between
    r0 and r1 seconds.  Per connection: in SYN, ACK, request (PSH-ACK ~300-900 B), ~14 ACKs, FIN;
    out SYN-ACK, ~28 data segments (1500 B), FIN."""

    def __init__(self, rng, server, clients, c0, c1, r0, r1):
        self.server, self.clients = server, clients
        self.c0, self.c1, self.r0, self.r1 = c0, c1, r0, r1

    def cps(self, t):
        if t < self.r0:
            return self.c0
        if t >= self.r1:
            return self.c1
        return self.c0 + (self.c1 - self.c0) * (t - self.r0) / (self.r1 - self.r0)

    def _conn(self, rng):
        k = int(rng.random() * len(self.clients))
        return self.clients[k], 32768 + mix32(k) % 28000, 64 - 7 - k % 13

    def make_in(self, rng, t):
        c, p, ttl = self._conn(rng)
        r = rng.random() * 18
        if r < 1:
            return (t, False, c, self.server, TCP, p, 443, SYN, 60, ttl, DF, 'i', 0)
        if r < 2:
            return (t, False, c, self.server, TCP, p, 443, FIN | ACK, 52, ttl, DF, 'i', 0)
        if r < 3:
            return (t, False, c, self.server, TCP, p, 443, PSH | ACK, rng.randint(300, 900), ttl, DF, 'i', 0)
        return (t, False, c, self.server, TCP, p, 443, ACK, 52, ttl, DF, 'i', 0)

    def make_out(self, rng, t):
        c, p, ttl = self._conn(rng)
        r = rng.random() * 30
        if r < 1:
            return (t, False, self.server, c, TCP, 443, p, SYN | ACK, 60, 64, DF, 'o', 0)
        if r < 2:
            return (t, False, self.server, c, TCP, 443, p, FIN | ACK, 52, 64, DF, 'o', 0)
        return (t, False, self.server, c, TCP, 443, p, ACK if rng.random() < 0.8 else PSH | ACK, 1500, 64, DF, 'o', 0)

    def comps(self):
        return [(lambda t: self.cps(t) * 18, self.make_in), (lambda t: self.cps(t) * 30, self.make_out)]


# ---------------------------------------------------------------------------------------------
# Attacks
# ---------------------------------------------------------------------------------------------

def rand_v4(rng):
    while True:
        a = rng.randrange(1, 224)
        if a not in (10, 127, 198, 203, 100):
            return bytes((a, rng.randrange(256), rng.randrange(256), rng.randrange(256)))


class DnsAmp:
    """DNS amplification: answers from open resolvers (UDP source port 53) to random ports of the
    victim; half the answers are large (3-4 KB, IPv4-fragmented into 1500 B + tail)."""

    def __init__(self, rng, victim, gbps, start, end, n_resolvers=6000):
        self.victim = victim
        self.resolvers = public_pool(rng, n_resolvers)
        # per answer: 0.5 small (600-1480) -> 1 packet; 0.5 large (3000-4000) -> 3 packets
        # mean bytes per packet ~ (0.5*1040 + 0.5*3500) / (0.5*1 + 0.5*3) = 1135
        self.pps = gbps * 1e9 / 8 / 1150
        self.start, self.end = start, end

    def make(self, rng, t):
        k = int(rng.random() * len(self.resolvers))
        src = self.resolvers[k]
        ttl = 50 + k % 10
        dport = rng.randrange(1024, 65536)
        if rng.random() < 0.25:
            return (t, False, src, self.victim, UDP, 53, dport, 0, rng.randint(600, 1480), ttl, 0, 'i', 0)
        # large answer, 3 fragments: first (UDP header, MF), middle (MF, off 185), last (off 370)
        r = rng.random()
        ident = rng.randrange(65536)
        if r < 1 / 3:
            return (t, False, src, self.victim, UDP, 53, dport, 0, 1500, ttl, 0x2000, 'i', ident)
        if r < 2 / 3:
            return (t, False, src, self.victim, UDP, 0, 0, 0, 1500, ttl, 0x2000 | 185, 'i', ident)
        return (t, False, src, self.victim, UDP, 0, 0, 0, rng.randint(100, 1100), ttl, 370, 'i', ident)

    def comps(self):
        return [(window(self.start, self.end, self.pps, rise=2), self.make)]


class SynFlood:
    def __init__(self, rng, victim, pps, start, end, spoofed=True, n_src=5000, dport=443, opts=False,
                 v6=False):
        self.victim, self.start, self.end, self.pps = victim, start, end, pps
        self.spoofed, self.dport, self.opts, self.v6 = spoofed, dport, opts, v6
        self.srcs = None if spoofed else (v6_pool(rng, n_src) if v6 else public_pool(rng, n_src))

    def make(self, rng, t):
        if self.spoofed:
            src = rand_v4(rng)
            ttl = rng.randrange(40, 255)
            iplen = 40 if rng.random() < 0.7 else 44
        else:
            k = int(rng.random() * len(self.srcs))
            src = self.srcs[k]
            ttl = 64 - 5 - k % 20
            iplen = 60
        if self.v6:
            iplen += 20
        return (t, self.v6, src, self.victim, TCP, rng.randrange(1024, 65536), self.dport, SYN, iplen, ttl,
                0 if self.spoofed else DF, 'i', 0)

    def comps(self):
        return [(window(self.start, self.end, self.pps, rise=1), self.make)]


class AckBurst:
    """Direct-path ACK flood from a botnet: bare ACKs (no payload) and random-flag ACKs."""

    def __init__(self, rng, victim, tbps, start, end, n_src=200000):
        self.victim = victim
        self.srcs = public_pool(rng, n_src)
        self.pps = tbps * 1e12 / 8 / 64
        self.start, self.end = start, end

    def make(self, rng, t):
        k = int(rng.random() * len(self.srcs))
        r = rng.random()
        if r < 0.6:
            flags = ACK
        else:
            flags = ACK | (rng.randrange(256) & (FIN | SYN | RST | PSH | URG | 0xC0))
        return (t, False, self.srcs[k], self.victim, TCP, rng.randrange(1024, 65536),
                rng.choice((80, 443, rng.randrange(1, 65536))), flags, 40, 40 + k % 80, 0, 'i', 0)

    def comps(self):
        return [(window(self.start, self.end, self.pps, rise=2), self.make)]


class UdpFlood:
    def __init__(self, rng, victim, pps, start, end, sizes=(540, 1400), n_src=30000, dport=None, v6=False,
                 src=None, dirn='i', hosts=None):
        self.victim, self.pps, self.start, self.end = victim, pps, start, end
        self.sizes, self.dport, self.v6, self.dirn = sizes, dport, v6, dirn
        self.hosts = hosts  # carpet: a list of victims
        self.src = src
        if src is None:
            self.srcs = v6_pool(rng, n_src) if v6 else public_pool(rng, n_src)

    def make(self, rng, t):
        dst = self.victim if self.hosts is None else self.hosts[int(rng.random() * len(self.hosts))]
        if self.src is not None:
            src, ttl = self.src, 64
        else:
            k = int(rng.random() * len(self.srcs))
            src, ttl = self.srcs[k], 64 - 4 - k % 25
        if len(self.sizes) == 2 and isinstance(self.sizes[0], int):
            iplen = self.sizes[0] if rng.random() < 0.6 else self.sizes[1]
        else:
            iplen = rng.randint(*self.sizes[0])
        if self.v6:
            iplen += 20
        dport = self.dport if self.dport is not None else rng.randrange(1, 65536)
        return (t, self.v6, src, dst, UDP, rng.randrange(1024, 65536), dport, 0, iplen, ttl, 0, self.dirn, 0)

    def comps(self):
        return [(window(self.start, self.end, self.pps, rise=1), self.make)]


# ---------------------------------------------------------------------------------------------
# Exporters
# ---------------------------------------------------------------------------------------------

MAC_R = bytes.fromhex('0200000000aa')
MAC_H = bytes.fromhex('0200000000bb')
BLOB = bytes(random.Random(7).randrange(256) for _ in range(4096))


def ip_csum(h):
    s = sum(struct.unpack('!10H', h))
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def raw_header(p, rng, maxlen=128):
    """Ethernet + IP + L4 header bytes of a packet, as an sFlow agent copies them."""
    t, v6, src, dst, proto, sport, dport, flags, iplen, ttl, ff, dirn, tos = p
    frame = max(iplen + 18, 64)
    if p[11] == 'i':
        eth = MAC_H + MAC_R
    else:
        eth = MAC_R + MAC_H
    if v6:
        eth += b'\x86\xdd'
        ip = struct.pack('!IHBB', 0x60000000 | (rng.getrandbits(20)), iplen - 40, proto, ttl) + src + dst
        l4len = iplen - 40
        nonfirst = False
    else:
        eth += b'\x08\x00'
        h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, iplen, tos or rng.getrandbits(16), ff, ttl, proto, 0, src, dst)
        ip = h[:10] + struct.pack('!H', ip_csum(h)) + h[12:]
        l4len = iplen - 20
        nonfirst = (ff & 0x1fff) != 0
    if nonfirst:
        l4 = b''
    elif proto == TCP:
        hl = 20
        if flags & SYN and l4len >= 40:
            hl = 40
        elif flags & SYN and l4len == 24:
            hl = 24
        elif l4len >= 32:
            hl = 32
        l4 = struct.pack('!HHIIBBHHH', sport, dport, rng.getrandbits(32), rng.getrandbits(32) if flags & ACK else 0,
                         (hl // 4) << 4, flags, 65535 if flags & SYN else 501, 0, 0)
        if hl == 40:
            l4 += b'\x02\x04\x05\xb4\x04\x02\x08\x0a' + rng.getrandbits(32).to_bytes(4, 'big') + b'\x00\x00\x00\x00\x01\x03\x03\x07'
        elif hl == 24:
            l4 += b'\x02\x04\x05\xb4'
        elif hl == 32:
            l4 += b'\x01\x01\x08\x0a' + rng.getrandbits(64).to_bytes(8, 'big')
    elif proto == UDP:
        l4 = struct.pack('!HHHH', sport, dport, l4len, 0)
    else:
        l4 = struct.pack('!BBHHH', dport >> 8, dport & 0xff, 0, rng.getrandbits(16), rng.getrandbits(16))
    hdr = eth + ip + l4
    want = min(frame - 4, maxlen)
    if len(hdr) < want:
        o = (len(hdr) * 37) % 2048
        hdr += BLOB[o:o + want - len(hdr)]
    return frame, hdr[:want]


class SflowAgent:
    proto = 'sflow'
    port = 6343

    def __init__(self, ip, rate, seed, in_if=1, out_if=7, switch_rec=False, boot_days=3.2, max_dgram=1400):
        self.ip = ip4(ip)
        self.rate = rate
        self.pkts = []
        self.rng = random.Random(seed)
        self.in_if, self.out_if = in_if, out_if
        self.switch_rec = switch_rec
        self.boot = -boot_days * 86400  # relative to T0, like every t here
        self.max = max_dgram

    def add(self, p):
        self.pkts.append(p)

    def _counter(self, t, ifidx, seq, octets, pkts):
        """counters_sample (format 2) with one generic interface counters record (format 1, 88 B)."""
        rec = struct.pack('!IIQIIQIIIIIIQIIIIII', ifidx, 6, 100_000_000_000, 1, 3,
                          octets[0] & (2**64 - 1), pkts[0] & 0xffffffff, 0, 0, 0, 0, 0,
                          octets[1] & (2**64 - 1), pkts[1] & 0xffffffff, 0, 0, 0, 0, 0)
        body = struct.pack('!III', seq, ifidx, 1) + struct.pack('!II', 1, len(rec)) + rec
        return struct.pack('!II', 2, len(body)) + body

    def finish(self, T):
        rng = self.rng
        self.pkts.sort(key=lambda p: p[0])
        out = []
        seq = 0
        sseq = {self.in_if: 0, self.out_if: 0}
        pool = {self.in_if: 0, self.out_if: 0}
        cseq = {self.in_if: 0, self.out_if: 0}
        octs = {self.in_if: [0, 0], self.out_if: [0, 0]}
        pk = {self.in_if: [0, 0], self.out_if: [0, 0]}
        pending, psize, pfirst = [], 28, None
        next_ctr = 5.0 + rng.random() * 3

        def flush(at):
            nonlocal pending, psize, pfirst, seq
            if not pending:
                return
            seq += 1
            up = int((at - self.boot) * 1000) & 0xffffffff
            d = struct.pack('!II4sIIII', 5, 1, self.ip, 0, seq, up, len(pending)) + b''.join(pending)
            out.append((at, d))
            pending, psize, pfirst = [], 28, None

        def push(s, t):
            nonlocal psize, pfirst
            if pending and (psize + len(s) > self.max or t - pfirst > 0.25):
                flush(max(t, pfirst) + 0.0005)
            if pfirst is None:
                pfirst = t
            pending.append(s)
            psize += len(s)

        for p in self.pkts:
            t = p[0]
            while t >= next_ctr:
                for ifx in (self.in_if, self.out_if):
                    cseq[ifx] += 1
                    push(self._counter(next_ctr, ifx, cseq[ifx], octs[ifx], pk[ifx]), next_ctr)
                next_ctr += 20.0
            src_if = self.in_if if p[11] == 'i' else self.out_if
            dst_if = self.out_if if p[11] == 'i' else self.in_if
            frame, hdr = raw_header(p, rng)
            sseq[src_if] += 1
            pool[src_if] += self.rate
            octs[src_if][0] += frame * self.rate
            pk[src_if][0] += self.rate
            octs[dst_if][1] += frame * self.rate
            pk[dst_if][1] += self.rate
            hl = len(hdr)
            pad = (-hl) % 4
            rec = struct.pack('!IIIIII', 1, 16 + hl + pad, 1, frame, 4, hl) + hdr + b'\0' * pad
            nrec = 1
            if self.switch_rec:
                rec += struct.pack('!IIIIII', 1001, 16, 100, 0, 100, 0)
                nrec += 1
            body = struct.pack('!IIIIIIII', sseq[src_if], src_if, self.rate, pool[src_if] & 0xffffffff, 0,
                               src_if, dst_if, nrec) + rec
            push(struct.pack('!II', 1, len(body)) + body, t)
        if pending:
            flush(pfirst + 0.25)
        return out


class FlowExporter:
    """Sampled flow cache (1:rate, random) + NetFlow v5 / v9 / IPFIX export.
    active/inactive timeouts in seconds; FIN/RST flows are exported at the next cache scan (1 s)."""

    def __init__(self, ip, rate, seed, kind='v9', sampler_style='34', active=5.0, inactive=2.0,
                 in_if=1, out_if=7, tmpl_every=20.0, source_id=0, boot_days=11.5):
        self.ip = ip4(ip)
        self.rate, self.kind, self.style = rate, kind, sampler_style
        self.active, self.inactive = active, inactive
        self.in_if, self.out_if = in_if, out_if
        self.rng = random.Random(seed)
        self.pkts = []
        self.tmpl_every = tmpl_every
        self.source_id = source_id
        self.boot = -boot_days * 86400 + 0.377  # relative to T0
        self.proto = {'v5': 'netflow5', 'v9': 'netflow9', 'ipfix': 'ipfix'}[kind]
        self.port = 4739 if kind == 'ipfix' else 2055

    def add(self, p):
        self.pkts.append(p)

    # -- flow cache --
    def records(self, T):
        self.pkts.sort(key=lambda p: p[0])
        cache = {}
        recs = []  # (export_time, [first, last, pkts, bytes, flags, proto-packet])
        if not self.pkts:
            return recs
        tick = math.floor(self.pkts[0][0]) + 1

        def scan(now):
            dead = []
            for k, e in cache.items():
                if e[6] or now - e[1] >= self.inactive or now - e[0] >= self.active:
                    dead.append(k)
            for k in dead:
                e = cache.pop(k)
                recs.append((now + 0.002 + self.rng.random() * 0.05, e))

        for p in self.pkts:
            t = p[0]
            while t >= tick:
                scan(tick)
                tick += 1
            ff = p[10]
            nonfirst = (not p[1]) and (ff & 0x1fff) != 0
            key = (p[2], p[3], p[4], 0 if nonfirst else p[5], 0 if nonfirst else p[6], p[11], p[12] if p[4] != UDP else 0)
            e = cache.get(key)
            if e is None:
                cache[key] = e = [t, t, 0, 0, 0, p, False]
            e[1] = t
            e[2] += 1
            e[3] += p[8]
            e[4] |= p[7]
            if p[4] == TCP and p[7] & (FIN | RST):
                e[6] = True
        while cache and tick <= T:  # flows still cached at the end of the capture are not exported
            scan(tick)
            tick += 1
        recs.sort(key=lambda r: r[0])
        return recs

    def up(self, t):
        return int((t - self.boot) * 1000) & 0xffffffff

    def finish(self, T):
        recs = self.records(T)
        return getattr(self, 'export_' + self.kind)(recs, T)

    def _batches(self, recs, per):
        """group records exported at the same scan into datagrams of at most `per` records."""
        i = 0
        while i < len(recs):
            t0 = recs[i][0]
            j = i
            while j < len(recs) and j - i < per and recs[j][0] - t0 < 0.06:
                j += 1
            yield recs[j - 1][0], recs[i:j]
            i = j

    def _ifs(self, p):
        return (self.in_if, self.out_if) if p[11] == 'i' else (self.out_if, self.in_if)

    # -- NetFlow v5 --
    def export_v5(self, recs, T):
        out = []
        seq = 0
        samp = (1 << 14) | (self.rate & 0x3fff)
        for at, batch in self._batches(recs, 30):
            up = self.up(at)
            body = b''
            for _, e in batch:
                p = e[5]
                i_if, o_if = self._ifs(p)
                sport, dport = (p[5], p[6])
                if (p[10] & 0x1fff) != 0:
                    sport = dport = 0
                body += struct.pack('!4s4s4sHHIIIIHHBBBBHHBBH', p[2], p[3], b'\0\0\0\0', i_if, o_if, e[2], e[3],
                                    self.up(e[0]), self.up(e[1]), sport, dport, 0, e[4] & 0xff, p[4], 0,
                                    0, 0, 0, 24, 0)
            secs = int(T0 + at)
            hdr = struct.pack('!HHIIIIBBH', 5, len(batch), up, secs, int((T0 + at - secs) * 1e9), seq, 0, 0, samp)
            seq += len(batch)
            out.append((at, hdr + body))
        return out

    # -- field layouts shared by v9 and IPFIX --
    def _layout(self, v6):
        ipfix = self.kind == 'ipfix'
        f = []
        if ipfix:
            f += [(1, 8), (2, 8), (152, 8), (153, 8)]
        else:
            f += [(1, 4), (2, 4), (22, 4), (21, 4)]
        f += [(27, 16), (28, 16)] if v6 else [(8, 4), (12, 4)]
        f += [(7, 2), (11, 2), (10, 4 if ipfix else 2), (14, 4 if ipfix else 2), (4, 1), (5, 1),
              (6, 2 if ipfix else 1), (61, 1)]
        if not v6:
            f += [(32, 2)]  # icmpTypeCodeIPv4 / ICMP_TYPE
        if self.style == '50':
            f += [(48, 1)]  # samplerId / FLOW_SAMPLER_ID
        return f

    def _pack_rec(self, e, v6):
        p = e[5]
        ipfix = self.kind == 'ipfix'
        i_if, o_if = self._ifs(p)
        sport, dport = p[5], p[6]
        if (not v6) and (p[10] & 0x1fff) != 0:
            sport = dport = 0
        icmp = dport if p[4] in (ICMP, ICMP6) else 0
        if ipfix:
            b = struct.pack('!QQQQ', e[3], e[2], int((T0 + e[0]) * 1000), int((T0 + e[1]) * 1000))
        else:
            b = struct.pack('!IIII', e[3], e[2], self.up(e[0]), self.up(e[1]))
        b += p[2] + p[3]
        if ipfix:
            b += struct.pack('!HHIIBBHB', sport, dport, i_if, o_if, p[4], 0, e[4] & 0xff, 0 if p[11] == 'i' else 1)
        else:
            b += struct.pack('!HHHHBBBB', sport, dport, i_if, o_if, p[4], 0, e[4] & 0xff, 0 if p[11] == 'i' else 1)
        if not v6:
            b += struct.pack('!H', icmp)
        if self.style == '50':
            b += b'\x01'
        return b

    def _options(self):
        """(template body, data record) of the sampling options."""
        ipfix = self.kind == 'ipfix'
        if self.style == '34':
            if ipfix:
                scope = [(149, 4)]
                data = struct.pack('!I', self.source_id)
            else:
                scope = [(1, 4)]
                data = self.ip
            fields = [(34, 4), (35, 1)]
            data += struct.pack('!IB', self.rate, 2)
        else:
            if ipfix:
                scope = [(48, 1)]
                data = b'\x01'
            else:
                scope = [(1, 4)]
                data = self.ip + b''
            fields = [(49, 1), (50, 4)] if ipfix else [(48, 1), (49, 1), (50, 4)]
            data += (b'' if ipfix else b'\x01') + struct.pack('!BI', 2, self.rate)
        return scope, fields, data

    # -- NetFlow v9 --
    def export_v9(self, recs, T):
        out = []
        seq = 0
        next_tmpl = -1e9
        lay4, lay6 = self._layout(False), self._layout(True)
        scope, ofields, odata = self._options()

        def tmpl_fs():
            b = b''
            for tid, lay in ((256, lay4), (257, lay6)):
                b += struct.pack('!HH', tid, len(lay)) + b''.join(struct.pack('!HH', *x) for x in lay)
            fs = struct.pack('!HH', 0, 4 + len(b)) + b
            ob = struct.pack('!HHH', 258, 4 * len(scope), 4 * len(ofields)) + \
                b''.join(struct.pack('!HH', *x) for x in scope + ofields)
            ob += b'\0' * ((-len(ob)) % 4)
            ofs = struct.pack('!HH', 1, 4 + len(ob)) + ob
            od = odata + b'\0' * ((-len(odata)) % 4)
            odfs = struct.pack('!HH', 258, 4 + len(od)) + od
            return fs + ofs + odfs, 4

        def emit(at, flowsets, count):
            nonlocal seq
            up = self.up(at)
            hdr = struct.pack('!HHIIII', 9, count, up, int(T0 + at), seq, self.source_id)
            seq += 1
            out.append((at, hdr + flowsets))

        for at, batch in self._batches(recs, 26):
            if at - next_tmpl >= self.tmpl_every:
                fs, n = tmpl_fs()
                emit(at, fs, n)
                next_tmpl = at
            groups = {}
            for _, e in batch:
                groups.setdefault(e[5][1], []).append(e)
            fss = b''
            cnt = 0
            for v6 in (False, True):
                if v6 not in groups:
                    continue
                b = b''.join(self._pack_rec(e, v6) for e in groups[v6])
                b += b'\0' * ((-len(b)) % 4)
                fss += struct.pack('!HH', 257 if v6 else 256, 4 + len(b)) + b
                cnt += len(groups[v6])
            emit(at, fss, cnt)
        return out

    # -- IPFIX --
    def export_ipfix(self, recs, T):
        out = []
        seq = 0
        next_tmpl = -1e9
        lay4, lay6 = self._layout(False), self._layout(True)
        scope, ofields, odata = self._options()

        def emit(at, sets, ndata):
            nonlocal seq
            hdr = struct.pack('!HHIII', 10, 16 + len(sets), int(T0 + at), seq, self.source_id)
            seq += ndata
            out.append((at, hdr + sets))

        for at, batch in self._batches(recs, 22):
            if at - next_tmpl >= self.tmpl_every:
                b = b''
                for tid, lay in ((256, lay4), (257, lay6)):
                    b += struct.pack('!HH', tid, len(lay)) + b''.join(struct.pack('!HH', *x) for x in lay)
                s = struct.pack('!HH', 2, 4 + len(b)) + b
                ob = struct.pack('!HHH', 258, len(scope) + len(ofields), len(scope)) + \
                    b''.join(struct.pack('!HH', *x) for x in scope + ofields)
                s += struct.pack('!HH', 3, 4 + len(ob)) + ob
                s += struct.pack('!HH', 258, 4 + len(odata)) + odata
                emit(at, s, 1)
                next_tmpl = at
            groups = {}
            for _, e in batch:
                groups.setdefault(e[5][1], []).append(e)
            sets = b''
            n = 0
            for v6 in (False, True):
                if v6 not in groups:
                    continue
                b = b''.join(self._pack_rec(e, v6) for e in groups[v6])
                sets += struct.pack('!HH', 257 if v6 else 256, 4 + len(b)) + b
                n += len(groups[v6])
            emit(at, sets, n)
        return out


COLLECTOR = ip4('192.0.2.250')


def write_pcap(path, streams):
    """streams: list of (exporter, [(t, payload)]); one merged, time-ordered capture."""
    allp = []
    for ex, dgs in streams:
        sport = 40000 + ex.ip[3]
        for t, d in dgs:
            allp.append((t, ex.ip, sport, ex.port, d))
    allp.sort(key=lambda x: x[0])
    ident = 0
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        buf = []
        for t, src, sport, dport, d in allp:
            ident = (ident + 1) & 0xffff
            udp = struct.pack('!HHHH', sport, dport, 8 + len(d), 0)
            h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28 + len(d), ident, DF, 63, UDP, 0, src, COLLECTOR)
            h = h[:10] + struct.pack('!H', ip_csum(h)) + h[12:]
            fr = MAC_H + MAC_R + b'\x08\x00' + h + udp + d
            ts = T0 + t
            sec = int(ts)
            us = int(round((ts - sec) * 1e6))
            if us >= 1000000:
                sec, us = sec + 1, us - 1000000
            buf.append(struct.pack('<IIII', sec, us, len(fr), len(fr)) + fr)
            if len(buf) > 5000:
                f.write(b''.join(buf))
                buf = []
        f.write(b''.join(buf))
    return len(allp)


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------

NETS_HOSTING = ['198.51.100.0/24', '203.0.113.0/24']
NETS_V6 = NETS_HOSTING + ['2001:db8:1::/48']
NETS_EYEBALL = ['100.64.0.0/18']


def hosting_hosts(exclude=()):
    hs = []
    for pfx in ('198.51.100.', '203.0.113.'):
        for i in range(1, 255):
            a = pfx + str(i)
            if a not in exclude:
                hs.append(ip4(a))
    return hs


def run_scenario(name, T, routes, seed, outdir):
    """routes: list of (pps_fn, make_fn, [(exporter, share), ...])."""
    rng = random.Random(seed * 7 + 1)
    exporters = []
    for _, _, rl in routes:
        for ex, _ in rl:
            if ex not in exporters:
                exporters.append(ex)
    nsamp = 0
    for sec in range(T):
        for pps, make, rl in routes:
            rate = pps(sec + 0.5)
            if rate <= 0:
                continue
            for ex, share in rl:
                n = poisson(rng, rate * share / ex.rate)
                nsamp += n
                for _ in range(n):
                    ex.add(make(rng, sec + rng.random()))
    streams = [(ex, ex.finish(T)) for ex in exporters]
    path = os.path.join(outdir, name + '.pcap')
    nd = write_pcap(path, streams)
    return nsamp, nd, os.path.getsize(path)


def sc(name, desc, networks, T, telemetry, attacks, build, seed):
    return dict(name=name, desc=desc, networks=networks, T=T, telemetry=telemetry, attacks=attacks,
                build=build, seed=seed)


def A(target, vectors, start, end, direction='incoming', carpet=False, note=''):
    return dict(target=target, direction=direction, carpet_bombing=carpet, vectors=vectors,
                start_s=start, end_s=end, note=note)


def routes_of(comps, rl):
    return [(p, m, rl) for p, m in comps]


# ---- builders: each returns routes ----

def b_hosting_sflow_benign(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(), clients=clients)
    ag = SflowAgent('192.0.2.1', 4096, rng.random(), switch_rec=True)
    return routes_of(bg.comps(out=True), [(ag, 1.0)])


def b_hosting_v9_benign(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(), clients=clients)
    ex = FlowExporter('192.0.2.2', 2048, rng.random(), kind='v9', sampler_style='34', source_id=1)
    return routes_of(bg.comps(out=False), [(ex, 1.0)])


def b_eyeball_benign(rng):
    subs = [bytes((100, 64, x, y)) for x in range(64) for y in range(1, 255)]
    cdn = public_pool(rng, 8000)
    res = [ip4('8.8.8.8'), ip4('1.1.1.1'), ip4('9.9.9.9'), ip4('8.8.4.4')] + public_pool(rng, 20)
    eb = Eyeball(rng, subs, 600, mean_mbps=1.0, ramp=2.0, cdn=cdn, resolvers=res)
    dl = Download(cdn[3], ip4('100.64.17.42'), 300, 250, 290)
    ag = SflowAgent('192.0.2.3', 8192, rng.random())
    return routes_of(eb.comps() + dl.comps(), [(ag, 1.0)])


def b_flashcrowd(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(exclude=('203.0.113.10',)), clients=clients)
    fc = FlashCrowd(rng, ip4('203.0.113.10'), public_pool(rng, 150000), 200, 1000, 150, 300)
    ex = FlowExporter('192.0.2.4', 2048, rng.random(), kind='ipfix', sampler_style='34', source_id=7)
    return routes_of(bg.comps(out=True) + fc.comps(), [(ex, 1.0)])


def b_dnsamp_sflow(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(), clients=clients)
    at = DnsAmp(rng, ip4('198.51.100.37'), 20, 200, 320)
    ag = SflowAgent('192.0.2.5', 8192, rng.random())
    return routes_of(bg.comps(out=True) + at.comps(), [(ag, 1.0)])


def b_synflood_ipfix(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(), clients=clients)
    at = SynFlood(rng, ip4('203.0.113.80'), 3_000_000, 45, 165, spoofed=True, dport=443)
    ex = FlowExporter('192.0.2.6', 4096, rng.random(), kind='ipfix', sampler_style='50', source_id=3)
    return routes_of(bg.comps(out=False) + at.comps(), [(ex, 1.0)])


def b_ackburst(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(), clients=clients)
    at = AckBurst(rng, ip4('198.51.100.200'), 2.0, 240, 255)
    ag = SflowAgent('192.0.2.7', 65536, rng.random())
    return routes_of(bg.comps(out=True) + at.comps(), [(ag, 1.0)])


def b_fresh_syn(rng):
    clients = public_pool(rng, 200000)
    fresh = ['203.0.113.%d' % i for i in range(240, 255)]
    bg = Hosting(rng, hosting_hosts(exclude=fresh), clients=clients)
    at = SynFlood(rng, ip4('203.0.113.251'), 40_000, 150, 330, spoofed=False, n_src=4000, dport=80)
    ag = SflowAgent('192.0.2.8', 2048, rng.random())
    return routes_of(bg.comps(out=True) + at.comps(), [(ag, 1.0)])


def b_carpet_v9(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(), clients=clients)
    victims = [ip4('198.51.100.%d' % i) for i in range(1, 255)]
    at = UdpFlood(rng, None, 1_200_000, 200, 350, sizes=(540, 1400), n_src=30000, hosts=victims)
    ex = FlowExporter('192.0.2.9', 4096, rng.random(), kind='v9', sampler_style='50', source_id=256)
    return routes_of(bg.comps(out=True) + at.comps(), [(ex, 1.0)])


def b_outgoing_v5(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(), clients=clients)
    at = UdpFlood(rng, ip4('45.60.12.34'), 400_000, 180, 300, sizes=((400, 1400),), src=ip4('203.0.113.66'),
                  dirn='o', dport=80)
    ex = FlowExporter('192.0.2.10', 2000, rng.random(), kind='v5')
    return routes_of(bg.comps(out=True) + at.comps(), [(ex, 1.0)])


def b_v6_udp(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(), clients=clients)
    v6hosts = [ip6('2001:db8:1::%x' % (0x10 + i)) for i in range(64)] + \
        [ip6('2001:db8:1:%x::1' % i) for i in range(1, 33)]
    bg6 = Hosting(rng, v6hosts, mbps_range=(1, 20), clients=v6_pool(rng, 50000), v6=True)
    at = UdpFlood(rng, ip6('2001:db8:1::50'), 1_000_000, 150, 270, sizes=((600, 1400),), n_src=20000, v6=True,
                  dport=443)
    ag = SflowAgent('192.0.2.11', 4096, rng.random(), switch_rec=True)
    return routes_of(bg.comps(out=True) + bg6.comps(out=True) + at.comps(), [(ag, 1.0)])


def b_multi(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(), clients=clients)
    at = UdpFlood(rng, ip4('198.51.100.9'), 135_000, 180, 300, sizes=((1000, 1400),), n_src=3000, dport=27015)
    r1 = SflowAgent('192.0.2.21', 1024, rng.random(), in_if=11, out_if=20)
    r2 = SflowAgent('192.0.2.22', 2048, rng.random(), in_if=12, out_if=20)
    r3 = SflowAgent('192.0.2.23', 4096, rng.random(), in_if=13, out_if=20, switch_rec=True)
    c = bg.comps(out=True)
    routes = [(c[0][0], c[0][1], [(r1, 0.40), (r2, 0.35), (r3, 0.25)]),
              (c[1][0], c[1][1], [(r1, 0.30), (r2, 0.30), (r3, 0.40)])]
    routes += routes_of(at.comps(), [(r1, 1 / 3), (r2, 1 / 3), (r3, 1 / 3)])
    return routes


def b_v9_amp_out(rng):
    clients = public_pool(rng, 200000)
    bg = Hosting(rng, hosting_hosts(), clients=clients)
    a1 = DnsAmp(rng, ip4('203.0.113.140'), 20, 100, 220)
    a2 = UdpFlood(rng, ip4('151.101.77.7'), 300_000, 300, 400, sizes=((200, 1400),), src=ip4('198.51.100.66'),
                  dirn='o', dport=443)
    ex = FlowExporter('192.0.2.12', 4096, rng.random(), kind='v9', sampler_style='34', source_id=0)
    return routes_of(bg.comps(out=True) + a1.comps() + a2.comps(), [(ex, 1.0)])


def b_eyeball_ipfix_udp(rng):
    subs = [bytes((100, 64, x, y)) for x in range(64) for y in range(1, 255)]
    cdn = public_pool(rng, 8000)
    res = [ip4('8.8.8.8'), ip4('1.1.1.1'), ip4('9.9.9.9')] + public_pool(rng, 20)
    eb = Eyeball(rng, subs, 540, mean_mbps=1.2, ramp=1.6, cdn=cdn, resolvers=res)
    at = UdpFlood(rng, ip4('100.64.33.201'), 350_000, 300, 360, sizes=((1000, 1400),), n_src=8000, dport=3074)
    ex = FlowExporter('192.0.2.13', 4096, rng.random(), kind='ipfix', sampler_style='50', source_id=42)
    return routes_of(eb.comps() + at.comps(), [(ex, 1.0)])


SCENARIOS = [
    sc('hosting_sflow_benign', 'hosting, 2 x /24 all 254 hosts busy (2-40 Mbps each), servers answer; nothing else',
       NETS_HOSTING, 480, 'sFlow v5 1:4096, one agent', [], b_hosting_sflow_benign, 101),
    sc('hosting_v9_inonly_benign', 'hosting, incoming side only; nothing else',
       NETS_HOSTING, 360, 'NetFlow v9 1:2048 (options: SAMPLING_INTERVAL 34 / ALGORITHM 35)', [], b_hosting_v9_benign, 102),
    sc('eyeball_sflow_ramp_benign', '16,256 subscribers of 100.64.0.0/18, evening ramp x2, QUIC, DNS, one 300 Mbps '
       'legitimate download (t=250-290) to 100.64.17.42; nothing else',
       NETS_EYEBALL, 600, 'sFlow v5 1:8192', [], b_eyeball_benign, 103),
    sc('flashcrowd_ipfix_benign', 'hosting background + legitimate flash crowd at 203.0.113.10 (200 -> 1000 conn/s '
       'between t=150 and 300: handshakes, requests in, data out 90 -> 450 Mbps); nothing else',
       NETS_HOSTING, 480, 'IPFIX 1:2048 (options: samplingInterval 34, scope observationDomainId)', [], b_flashcrowd, 104),
    sc('hosting_sflow_dnsamp', 'hosting background + 20 Gbps DNS amplification from 6,000 resolvers (sport 53; 1/4 of packets '
       'unfragmented 600-1480 B answers, 3/4 IPv4 fragments of 3-4 KB answers) at 198.51.100.37, t=200-320',
       NETS_HOSTING, 480, 'sFlow v5 1:8192',
       [A('198.51.100.37/32', ['dns_amplification'], 200, 320)], b_dnsamp_sflow, 105),
    sc('hosting_ipfix_synflood', 'hosting (incoming only) + 3 Mpps spoofed SYN flood at 203.0.113.80 from start-up, '
       't=45-165',
       NETS_HOSTING, 360, 'IPFIX 1:4096 (options: samplerMode 49 / samplerRandomInterval 50, records carry samplerId 48)',
       [A('203.0.113.80/32', ['syn_flood'], 45, 165)], b_synflood_ipfix, 106),
    sc('hosting_sflow_ackburst', 'hosting background + 2 Tbps ACK burst (64 B frames: bare ACKs 60 %, random-flag '
       'ACKs 40 %, 200k bots) at 198.51.100.200, t=240-255',
       NETS_HOSTING, 420, 'sFlow v5 1:65536',
       [A('198.51.100.200/32', ['ack_flood'], 240, 255)], b_ackburst, 107),
    sc('hosting_sflow_fresh_syn40k', 'hosting background (203.0.113.240-254 unused) + 40 kpps SYN flood from '
       '4,000 sources at 203.0.113.251 (no traffic before, no answers), t=150-330',
       NETS_HOSTING, 420, 'sFlow v5 1:2048',
       [A('203.0.113.251/32', ['syn_flood'], 150, 330)], b_fresh_syn, 108),
    sc('hosting_v9_carpet', 'hosting background + UDP carpet over all of 198.51.100.0/24 (1.2 Mpps, random ports, '
       '540/1400 B, 30k sources, ~4.7 kpps per host), t=200-350',
       NETS_HOSTING, 480, 'NetFlow v9 1:4096 (options: FLOW_SAMPLER_ID 48 / MODE 49 / RANDOM_INTERVAL 50)',
       [A('198.51.100.0/24', ['udp_flood'], 200, 350, carpet=True)], b_carpet_v9, 109),
    sc('hosting_v5_outgoing', 'hosting background + outgoing UDP flood (400 kpps, ~3 Gbps) from customer host '
       '203.0.113.66 to 45.60.12.34:80, t=180-300',
       NETS_HOSTING, 420, 'NetFlow v5 1:2000 (header sampling_interval)',
       [A('203.0.113.66/32', ['udp_flood'], 180, 300, direction='outgoing')], b_outgoing_v5, 110),
    sc('hosting_v6_sflow_udpflood', 'hosting IPv4 + 96 IPv6 hosts in 2001:db8:1::/48 + 1 Mpps UDP flood '
       '(600-1400 B, 20k IPv6 sources, dport 443) at 2001:db8:1::50, t=150-270',
       NETS_V6, 420, 'sFlow v5 1:4096',
       [A('2001:db8:1::50/128', ['udp_flood'], 150, 270)], b_v6_udp, 111),
    sc('multi_exporter_udpflood', 'hosting background split over 3 routers + UDP flood at 198.51.100.9 '
       '(135 kpps, 1000-1400 B, ~1.3 Gbps, dport 27015), one third through each router, t=180-300',
       NETS_HOSTING, 360, 'sFlow v5 from 3 agents at 1:1024, 1:2048, 1:4096',
       [A('198.51.100.9/32', ['udp_flood'], 180, 300)], b_multi, 112),
    sc('hosting_v9_amp_and_outgoing', 'hosting background + 20 Gbps DNS amplification at 203.0.113.140 '
       '(t=100-220) + outgoing UDP flood 300 kpps from 198.51.100.66 to 151.101.77.7:443 (t=300-400)',
       NETS_HOSTING, 480, 'NetFlow v9 1:4096 (options 34/35)',
       [A('203.0.113.140/32', ['dns_amplification'], 100, 220),
        A('198.51.100.66/32', ['udp_flood'], 300, 400, direction='outgoing')], b_v9_amp_out, 113),
    sc('eyeball_ipfix_udpflood', 'eyeball (16,256 subscribers, ramp x1.6) + UDP flood 350 kpps (~3.3 Gbps, '
       'dport 3074) at subscriber 100.64.33.201, t=300-360',
       NETS_EYEBALL, 540, 'IPFIX 1:4096 (options 49/50, records carry samplerId)',
       [A('100.64.33.201/32', ['udp_flood'], 300, 360)], b_eyeball_ipfix_udp, 114),
]


def truth_entry(s):
    return dict(file='captures/%s.pcap' % s['name'], description=s['desc'], networks=s['networks'],
                t0=T0, duration_s=s['T'], telemetry=s['telemetry'],
                attacks=[{k: v for k, v in a.items() if k != 'note'} for a in s['attacks']],
                nothing_else=True)


def load_truth(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {'t0': T0, 'captures': {}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--only', nargs='*')
    ap.add_argument('--list', action='store_true')
    ap.add_argument('--out', default=os.path.join(HERE, 'captures'))
    args = ap.parse_args()
    if args.list:
        for s in SCENARIOS:
            print('%-30s %s' % (s['name'], s['desc']))
        return
    os.makedirs(args.out, exist_ok=True)
    tpath = os.path.join(HERE, 'truth.json')
    truth = load_truth(tpath)
    for s in SCENARIOS:
        truth['captures'][s['name']] = truth_entry(s)
    for s in SCENARIOS:
        if args.only and s['name'] not in args.only:
            continue
        t = time.time()
        rng = random.Random(s['seed'])
        routes = s['build'](rng)
        nsamp, nd, size = run_scenario(s['name'], s['T'], routes, s['seed'], args.out)
        print('%-30s %8d samples %8d datagrams %7.1f MB %6.1f s' % (s['name'], nsamp, nd, size / 1e6,
                                                                    time.time() - t), flush=True)
    with open(tpath, 'w') as f:
        json.dump(truth, f, indent=1)


if __name__ == '__main__':
    main()
