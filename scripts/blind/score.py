#!/usr/bin/env python3
"""Score a floodwall binary on the blind captures.

  python3 score.py BINARY [--only NAME ...] [--truth truth.json] [--json OUT] [--allow-restarts]

A capture is right when every expected attack is reported (attack_started) with the right target,
direction and carpet flag, its expected vectors among the vectors reported for that attack (any of
its events), started_at within [start_s - 1 s, start_s + 5 s], and nothing else is reported: every
other attack_started is a false alarm (a second start of the same target while its expected attack
is running counts as a false alarm too, unless --allow-restarts).
"""
import argparse, datetime, json, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_ts(s):
    s = s.replace('Z', '+00:00')
    return datetime.datetime.fromisoformat(s).timestamp()


def run(binary, cap, base):
    args = [binary, 'replay', '--json']
    for n in cap['networks']:
        args += ['--network', n]
    args.append(os.path.join(base, cap['file']))
    t = time.time()
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.time() - t
    attacks = {}
    order = []
    bad = 0
    for line in p.stdout.splitlines():
        line = line.strip()
        if not line.startswith('{'):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            bad += 1
            continue
        aid = ev.get('attack_id') or (ev.get('target'), ev.get('direction'), ev.get('started_at'))
        a = attacks.get(aid)
        if a is None:
            a = attacks[aid] = dict(id=aid, target=ev.get('target'), direction=ev.get('direction'),
                                   carpet=bool(ev.get('carpet_bombing')), vectors=[], started_at=None,
                                   ended_at=None, peak_bps=0, peak_pps=0, trigger=None, has_start=False)
            order.append(aid)
        for v in ev.get('vectors') or []:
            if v not in a['vectors']:
                a['vectors'].append(v)
        if ev.get('event') == 'attack_started':
            a['has_start'] = True
            a['started_at'] = ev.get('started_at')
            tr = ev.get('trigger') or {}
            a['trigger'] = '%s/%s' % (tr.get('kind'), tr.get('metric'))
        if ev.get('event') == 'attack_ended':
            a['ended_at'] = ev.get('ended_at')
        a['peak_bps'] = max(a['peak_bps'], ev.get('peak_bps') or 0)
        a['peak_pps'] = max(a['peak_pps'], ev.get('peak_pps') or 0)
    rep = [attacks[k] for k in order if attacks[k]['has_start']]
    return rep, wall, p.returncode, p.stderr, bad


def rel(a, t0):
    return None if not a['started_at'] else parse_ts(a['started_at']) - t0


def fmt_rep(a, t0):
    r = rel(a, t0)
    e = a['ended_at'] and parse_ts(a['ended_at']) - t0
    return '%s %s carpet=%s %s start=%s end=%s peak=%.2f Gbps/%.0f kpps trig=%s' % (
        a['target'], a['direction'], str(a['carpet']).lower(), ','.join(a['vectors']),
        'None' if r is None else '%+.0f' % r, 'None' if e is None or e == '' else '%.0f' % e,
        a['peak_bps'] / 1e9, a['peak_pps'] / 1e3, a['trigger'])


def judge(cap, rep, allow_restarts=False):
    t0 = cap['t0']
    used = set()
    lines = []
    ok = True
    for ex in cap['attacks']:
        best, why = None, 'no report for this target/direction/carpet'
        closest = 1e18
        for i, a in enumerate(rep):
            if i in used:
                continue
            if a['target'] != ex['target'] or a['direction'] != ex['direction'] or a['carpet'] != ex['carpet_bombing']:
                continue
            r = rel(a, t0)
            missing = [v for v in ex['vectors'] if v not in a['vectors']]
            timing = r is not None and ex['start_s'] - 1 <= r <= ex['start_s'] + 5
            if timing and not missing:
                best, why = i, None
                break
            if best is None and (r is None or r is not None and abs(r - ex['start_s']) < closest):
                closest = abs(r - ex['start_s']) if r is not None else 1e18
                why = 'reported but %s' % '; '.join(
                    x for x in (None if timing else 'started_at %s (want %d..%d)' % (
                        'None' if r is None else '%+.0f' % r, ex['start_s'] - 1, ex['start_s'] + 5),
                        None if not missing else 'vectors %s lack %s' % (a['vectors'], missing)) if x)
        desc = '%s %s carpet=%s %s start=%d' % (ex['target'], ex['direction'], str(ex['carpet_bombing']).lower(),
                                                ','.join(ex['vectors']), ex['start_s'])
        if best is None:
            ok = False
            lines.append('  MISS     %s  -- %s' % (desc, why))
        else:
            used.add(best)
            lines.append('  FOUND    %s  <- %s' % (desc, fmt_rep(rep[best], t0)))
    for i, a in enumerate(rep):
        if i in used:
            continue
        restart = False
        for ex in cap['attacks']:
            r = rel(a, t0)
            if (a['target'] == ex['target'] and a['direction'] == ex['direction'] and a['carpet'] == ex['carpet_bombing']
                    and r is not None and ex['start_s'] - 1 <= r <= ex['end_s'] + 30):
                restart = True
        if restart and allow_restarts:
            lines.append('  restart  %s (tolerated)' % fmt_rep(a, t0))
            continue
        ok = False
        lines.append('  FALSE    %s%s' % (fmt_rep(a, t0), '  (same target as an expected attack: late, repeated or re-started)' if restart else ''))
    return ok, lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('binary')
    ap.add_argument('--only', nargs='*')
    ap.add_argument('--truth', default=os.path.join(HERE, 'truth.json'))
    ap.add_argument('--json', help='write per-capture results here')
    ap.add_argument('--allow-restarts', action='store_true')
    ap.add_argument('-q', '--quiet', action='store_true', help='one line per capture')
    ap.add_argument('--strict', action='store_true',
                    help='exit 1 unless every capture in the truth exists and is right')
    args = ap.parse_args()
    with open(args.truth) as f:
        truth = json.load(f)
    base = os.path.dirname(os.path.abspath(args.truth))
    results = []
    total_wall = 0.0
    for name, cap in truth['captures'].items():
        if args.only and name not in args.only:
            continue
        if not os.path.exists(os.path.join(base, cap['file'])):
            print('%-30s MISSING (no capture; run gen.py)' % name)
            results.append(dict(name=name, right=False, missing=True))
            continue
        rep, wall, rc, err, bad = run(args.binary, cap, base)
        total_wall += wall
        ok, lines = judge(cap, rep, args.allow_restarts)
        if rc != 0:
            ok = False
            lines.append('  ERROR exit code %d: %s' % (rc, err.strip().splitlines()[-1:] if err.strip() else ''))
        nfalse = sum(1 for l in lines if l.startswith('  FALSE'))
        nmiss = sum(1 for l in lines if l.startswith('  MISS'))
        print('%-30s %-5s expected %d, reported %d, missed %d, false %d   %6.1f s' % (
            name, 'RIGHT' if ok else 'WRONG', len(cap['attacks']), len(rep), nmiss, nfalse, wall), flush=True)
        if not args.quiet:
            for l in lines:
                print(l)
        results.append(dict(name=name, right=ok, wall_s=round(wall, 2), expected=cap['attacks'],
                            reported=rep, lines=lines))
    n = sum(1 for r in results if r['right'])
    print('%d of %d captures right (%s; %.0f s of replay)' % (n, len(results), args.binary, total_wall))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1, default=str)
    if args.strict and n != len(results):
        sys.exit(1)


if __name__ == '__main__':
    main()
