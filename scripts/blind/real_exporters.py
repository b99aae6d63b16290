#!/usr/bin/env python3
"""Two captures made by REAL exporters (softflowd 1.1.0 NetFlow v9, pmacct pmacctd + sfprobe sFlow v5)
from a raw-packet pcap generated here: scaled-down hosting background (both /24s, hosts .240-.254 of
203.0.113.0/24 unused) plus a 40 kpps SYN flood from 4,000 sources at 203.0.113.251 (t = 60..120 s).

The exporters read the raw pcap as fast as they can, so the loopback capture's own timestamps are
wall-clock; each datagram's pcap timestamp is rewritten to its export time in telemetry time:
  * NetFlow v9: boot + sysUptime (boot = max(unix_secs - sysUptime)), i.e. the exporter's own clock
    (softflowd -a takes it from the raw pcap's timestamps);
  * sFlow: sample_pool says how many packets the agent had seen when it took the last sample of a
    datagram; the raw packet with that index gives the time (the agent has no absolute clock).
Only processes started here are stopped, by PID.  Needs root (tcpdump on lo).

  python3 real_exporters.py            # -> captures/real_*.pcap + truth.json entries
"""
import json, os, random, signal, struct, subprocess, sys, tempfile, time
import gen

HERE = os.path.dirname(os.path.abspath(__file__))
T = 150
ATT = (60, 120)


def make_raw(path, seed=201):
    rng = random.Random(seed)
    clients = gen.public_pool(rng, 50000)
    fresh = ['203.0.113.%d' % i for i in range(240, 255)]
    bg = gen.Hosting(rng, gen.hosting_hosts(exclude=fresh), mbps_range=(0.05, 0.125), clients=clients, nconn=60)
    syn = gen.SynFlood(rng, gen.ip4('203.0.113.251'), 40000, ATT[0], ATT[1], spoofed=False, n_src=4000, dport=80)
    comps = bg.comps(out=True) + syn.comps()
    times = []
    n = 0
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 96, 1))
        for sec in range(T):
            pk = []
            for pps, make in comps:
                k = gen.poisson(rng, pps(sec + 0.5))
                for _ in range(k):
                    pk.append(make(rng, sec + rng.random()))
            pk.sort(key=lambda p: p[0])
            buf = []
            for p in pk:
                frame, hdr = gen.raw_header(p, rng, maxlen=96)
                ts = gen.T0 + p[0]
                s = int(ts)
                us = min(999999, int((ts - s) * 1e6))
                buf.append(struct.pack('<IIII', s, us, len(hdr), frame - 4) + hdr)
                times.append(p[0])
            f.write(b''.join(buf))
            n += len(pk)
    return times


def capture(port, cmd, out, settle=1.5, poke=None):
    """run tcpdump on lo, then the exporter until it exits, then stop tcpdump."""
    td = subprocess.Popen(['tcpdump', '-i', 'lo', '-U', '-s', '0', '-w', out, 'udp and dst port %d' % port],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(settle)
    ex = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = time.time()
    try:
        while ex.poll() is None:
            if poke:
                subprocess.run(poke, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            if time.time() - t > 900:
                ex.send_signal(signal.SIGTERM)
                break
    finally:
        time.sleep(2)
        td.send_signal(signal.SIGINT)
        td.wait()
    return time.time() - t


def read_pcap(path):
    with open(path, 'rb') as f:
        d = f.read()
    magic = struct.unpack('<I', d[:4])[0]
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), hex(magic)
    link = struct.unpack('<I', d[20:24])[0]
    off = 24
    out = []
    while off + 16 <= len(d):
        s, us, cl, ol = struct.unpack('<IIII', d[off:off + 16])
        out.append([s, us, d[off + 16:off + 16 + cl]])
        off += 16 + cl
    return link, out


def write_pcap(path, link, pkts):
    pkts.sort(key=lambda p: (p[0], p[1]))
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, link))
        for s, us, fr in pkts:
            f.write(struct.pack('<IIII', s, us, len(fr), len(fr)) + fr)


def udp_payload(fr):
    # Ethernet (lo has zero MACs) + IPv4 + UDP
    assert fr[12:14] == b'\x08\x00'
    ihl = (fr[14] & 0x0f) * 4
    return fr[14 + ihl + 8:]


def retime_v9(link, pkts):
    hdrs = []
    for p in pkts:
        pl = udp_payload(p[2])
        ver, cnt, up, secs = struct.unpack('!HHII', pl[:12])
        assert ver in (9, 10)
        hdrs.append((up, secs))
    boot = max(secs - up / 1000.0 for up, secs in hdrs)
    for p, (up, secs) in zip(pkts, hdrs):
        ts = boot + up / 1000.0
        p[0] = int(ts)
        p[1] = int((ts - int(ts)) * 1e6)
    return boot


def retime_sflow(link, pkts, times):
    last = 0.0
    for p in pkts:
        pl = udp_payload(p[2])
        ver, at = struct.unpack('!II', pl[:8])
        assert ver == 5
        o = 8 + (4 if at == 1 else 16)
        sub, seq, up, ns = struct.unpack('!IIII', pl[o:o + 16])
        o += 16
        pool_max = None
        for _ in range(ns):
            fmt, ln = struct.unpack('!II', pl[o:o + 8])
            body = pl[o + 8:o + 8 + ln]
            if fmt & 0xfff == 1:
                pool = struct.unpack('!I', body[12:16])[0]
                pool_max = pool if pool_max is None else max(pool_max, pool)
            elif fmt & 0xfff == 3:
                pool = struct.unpack('!I', body[16:20])[0]
                pool_max = pool if pool_max is None else max(pool_max, pool)
            o += 8 + ln
        if pool_max is not None:
            idx = min(max(pool_max - 1, 0), len(times) - 1)
            last = max(last, times[idx] + 0.001)
        p[0] = gen.T0 + int(last)
        p[1] = int((last - int(last)) * 1e6)


def main():
    os.makedirs(os.path.join(HERE, 'captures'), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='fw-real-')
    raw = os.path.join(tmp, 'raw.pcap')
    t = time.time()
    times = make_raw(raw)
    print('raw pcap: %d packets, %.0f MB, %.1f s' % (len(times), os.path.getsize(raw) / 1e6, time.time() - t))

    # --- softflowd, NetFlow v9, 1:10 periodic sampling, short timeouts (DDoS-collector style) ---
    ctl = os.path.join(tmp, 'sfd.ctl')
    out = os.path.join(tmp, 'softflowd.pcap')
    cmd = ['softflowd', '-d', '-a', '-r', raw, '-n', '127.0.0.1:2055', '-v', '9', '-s', '10', '-m', '65536',
           '-c', ctl, '-p', os.path.join(tmp, 'sfd.pid'),
           '-t', 'maxlife=10', '-t', 'expint=1', '-t', 'general=5', '-t', 'tcp=5', '-t', 'tcp.rst=2',
           '-t', 'tcp.fin=2', '-t', 'udp=5', '-t', 'icmp=5']
    w = capture(2055, cmd, out, poke=['softflowctl', '-c', ctl, 'statistics'])
    link, pk = read_pcap(out)
    boot = retime_v9(link, pk)
    write_pcap(os.path.join(HERE, 'captures', 'real_softflowd_v9_syn40k.pcap'), link, pk)
    print('softflowd: %d datagrams, %.0f s wall, boot at %+.1f s' % (len(pk), w, boot - gen.T0))

    # --- pmacctd + sfprobe, sFlow v5, 1:64 ---
    conf = os.path.join(tmp, 'pmacctd.conf')
    with open(conf, 'w') as f:
        f.write('daemonize: false\npcap_savefile: %s\npcap_savefile_wait: false\nplugins: sfprobe[p]\n'
                'sampling_rate: 64\nsfprobe_receiver: 127.0.0.1:6343\nsfprobe_agentip: 192.0.2.31\n'
                'sfprobe_agentsubid: 0\nsfprobe_ifspeed: 100000000000\n' % raw)
    out = os.path.join(tmp, 'pmacct.pcap')
    w = capture(6343, ['pmacctd', '-f', conf], out)
    link, pk = read_pcap(out)
    retime_sflow(link, pk, times)
    write_pcap(os.path.join(HERE, 'captures', 'real_pmacct_sfprobe_syn40k.pcap'), link, pk)
    print('pmacctd sfprobe: %d datagrams, %.0f s wall' % (len(pk), w))

    tpath = os.path.join(HERE, 'truth.json')
    truth = gen.load_truth(tpath)
    base = dict(networks=gen.NETS_HOSTING, t0=gen.T0, duration_s=T, nothing_else=True,
                attacks=[dict(target='203.0.113.251/32', direction='incoming', carpet_bombing=False,
                              vectors=['syn_flood'], start_s=ATT[0], end_s=ATT[1])])
    desc = ('raw pcap (scaled-down hosting background, ~11 kpps in+out over both /24s, 203.0.113.240-254 unused) '
            '+ 40 kpps SYN flood (4,000 sources, dport 80, no answers) at 203.0.113.251, t=60-120, exported by ')
    truth['captures']['real_softflowd_v9_syn40k'] = dict(base, file='captures/real_softflowd_v9_syn40k.pcap',
        description=desc + 'softflowd 1.1.0', telemetry='NetFlow v9 by softflowd -s 10 (1:10 periodic), '
        'timeouts 5 s / maxlife 10 s, exporter 127.0.0.1')
    truth['captures']['real_pmacct_sfprobe_syn40k'] = dict(base, file='captures/real_pmacct_sfprobe_syn40k.pcap',
        description=desc + 'pmacctd 1.7.7 sfprobe', telemetry='sFlow v5 by pmacctd sfprobe, sampling_rate 64, '
        'agent 192.0.2.31')
    with open(tpath, 'w') as f:
        json.dump(truth, f, indent=1)
    subprocess.run(['rm', '-rf', tmp])


if __name__ == '__main__':
    main()
