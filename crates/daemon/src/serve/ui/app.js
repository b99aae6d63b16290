// Floodwall's dashboard: one page, routed by the URL's hash, reading the daemon's own API
// (/api/v1, described by /api/v1/openapi.json) and its live stream (/api/v1/stream, Server-Sent
// Events read through fetch so the token travels in a header, never in a URL). Every value
// from the API reaches the page as text (textContent), never as markup.
'use strict';

const state = {
  token: sessionStorage.getItem('floodwall-token') || '',
  status: null,
  // The overview chart: [times, incoming pps, outgoing pps], newest last.
  series: [[], [], []],
  chart: null,
  view: null,
  onStatus: [],
};

const SERIES_SECONDS = 900;

// ---- DOM helpers -----------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function table(columns, rows, empty) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map(c => h('th', { class: c.num ? 'num' : '', scope: 'col' }, c.title)))),
    h('tbody', {}, rows.map(r => h('tr', { class: r.rowClass || '' },
      columns.map(c => h('td', { class: c.num ? 'num' : '' }, c.cell(r)))))));
}

function view(title, ...content) {
  const main = document.getElementById('view');
  main.replaceChildren(h('h1', {}, title), ...content);
  document.title = title + ' · Floodwall';
}

// ---- Formatting --------------------------------------------------------------------------------

function si(n, unit) {
  if (n === undefined || n === null) return '–';
  const steps = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [v, p] of steps) if (Math.abs(n) >= v) return (n / v).toFixed(2) + ' ' + p + unit;
  return Math.round(n) + ' ' + unit;
}
const bps = n => si(n, 'bps');
const pps = n => si(n, 'pps');
const pct = x => (x === undefined || x === null) ? '–' : (100 * x).toFixed(1) + ' %';
// Unix ms or RFC 3339, in the browser's time zone.
const when = t => t ? new Date(t).toLocaleString() : '–';
const targetLink = t => h('a', { href: '#/search/' + encodeURIComponent(t), class: 'target' }, t);
const attackLink = (id, text) => h('a', { href: '#/attacks/' + encodeURIComponent(id), class: 'target' }, text);
const status = s => h('span', { class: 'status-' + s }, String(s).replace('_', ' '));

// ---- The API -----------------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    askToken();
    throw new Error('a token is needed');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function askToken(message) {
  const dialog = document.getElementById('login');
  document.getElementById('login-error').textContent = message || '';
  if (!dialog.open) dialog.showModal();
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('login-form').addEventListener('submit', () => {
    state.token = document.getElementById('login-token').value.trim();
    sessionStorage.setItem('floodwall-token', state.token);
    route();
  });
});

function confirmAction(text) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  dialog.returnValue = '';
  dialog.showModal();
  document.getElementById('confirm-cancel').focus();
  return new Promise(resolve => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

// ---- The live stream ---------------------------------------------------------------------------

function setLive(on, text) {
  const el = document.getElementById('live');
  el.className = 'live ' + (on ? 'on' : 'off');
  el.textContent = text;
}

async function stream() {
  for (;;) {
    try {
      const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
      const response = await fetch('/api/v1/stream', { headers });
      if (response.status === 401) {
        setLive(false, 'token needed');
        askToken();
        await sleep(2000);
        continue;
      }
      if (!response.ok) throw new Error(response.statusText);
      setLive(true, 'live');
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split('\n').filter(l => l.startsWith('data:')).map(l => l.slice(5)).join('\n');
          if (data.trim()) receive(JSON.parse(data));
        }
      }
    } catch (e) {
      // The daemon restarts, the network blinks: try again.
    }
    setLive(false, 'reconnecting');
    await sleep(1000);
  }
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

function receive(status) {
  state.status = status;
  const t = Math.floor(status.at_ms / 1000);
  const total = dir => (status.traffic || []).filter(r => r.direction === dir).reduce((s, r) => s + r.pps, 0);
  const [times, ins, outs] = state.series;
  if (!times.length || times[times.length - 1] < t) {
    times.push(t); ins.push(total('incoming')); outs.push(total('outgoing'));
    while (times.length && times[0] < t - SERIES_SECONDS) { times.shift(); ins.shift(); outs.shift(); }
  }
  for (const f of state.onStatus) f(status);
}

// ---- Charts ------------------------------------------------------------------------------------

// A time chart; `scales[i]` names the y scale of series i (a second one gets its own axis on
// the right, for packets and bits side by side).
function chart(el, series, labels, colors, valueFormat, scales) {
  const width = Math.max(300, el.clientWidth || 600);
  scales = scales || labels.map(() => 'y');
  const grid = { stroke: '#8b95a344' };
  const axes = [{ stroke: '#8b95a3', grid, space: 90 },
    { scale: scales[0], stroke: '#8b95a3', grid, size: 70, values: (u, vals) => vals.map(valueFormat) }];
  const second = scales.find(s => s !== scales[0]);
  if (second) axes.push({ scale: second, side: 1, stroke: '#8b95a3', grid: { show: false }, size: 70, values: (u, vals) => vals.map(valueFormat) });
  const opts = {
    width, height: 240,
    series: [{}].concat(labels.map((label, i) => ({
      label, scale: scales[i], stroke: colors[i], width: 1.5, value: (u, v) => v === null ? '–' : valueFormat(v),
    }))),
    axes,
    legend: { live: true },
  };
  return new uPlot(opts, series, el);
}

// ---- Pages -------------------------------------------------------------------------------------

function overview() {
  const cards = h('div', { class: 'cards', id: 'cards' });
  const chartEl = h('div', { class: 'chart panel', id: 'traffic-chart', role: 'img', 'aria-label': 'Packets per second in and out, last 15 minutes' });
  const attacks = h('div', { id: 'active-attacks' });
  const topHosts = h('div', { id: 'top-hosts' });
  const topPrefixes = h('div', { id: 'top-prefixes' });
  const channels = h('div', { id: 'channels' });
  view('Overview', cards,
    h('h2', {}, 'Traffic (packets/s)'), chartEl,
    h('h2', {}, 'Attacks now'), h('div', { class: 'panel' }, attacks),
    h('div', { class: 'grid2' },
      h('section', {}, h('h2', {}, 'Busiest hosts (incoming, last second)'), h('div', { class: 'panel' }, topHosts)),
      h('section', {}, h('h2', {}, 'Busiest prefixes (incoming, last second)'), h('div', { class: 'panel' }, topPrefixes))),
    h('h2', {}, 'Mitigators'), h('div', { class: 'panel' }, channels));

  // The last 15 minutes from the history, then each second from the stream.
  Promise.all([api('/api/v1/traffic?direction=incoming'), api('/api/v1/traffic?direction=outgoing')])
    .then(([i, o]) => {
      const byT = new Map();
      for (const p of i.points) byT.set(p.t, [p.pps, null]);
      for (const p of o.points) byT.set(p.t, [(byT.get(p.t) || [null])[0], p.pps]);
      const known = new Set(state.series[0]);
      for (const [t, [a, b]] of [...byT.entries()].sort((x, y) => x[0] - y[0])) {
        if (known.has(t)) continue;
        state.series[0].push(t); state.series[1].push(a); state.series[2].push(b);
      }
      const order = state.series[0].map((t, k) => k).sort((x, y) => state.series[0][x] - state.series[0][y]);
      state.series = state.series.map(s => order.map(k => s[k]));
      draw();
    })
    .catch(() => {});

  function draw() {
    if (!document.getElementById('traffic-chart')) return;
    if (!state.chart || !document.body.contains(state.chart.root)) {
      chartEl.replaceChildren();
      state.chart = chart(chartEl, state.series, ['in', 'out'], ['#5aa9ff', '#f2a65a'], v => si(v, ''));
    } else {
      state.chart.setData(state.series);
    }
  }

  function render(s) {
    const sum = (dir, k) => (s.traffic || []).filter(r => r.direction === dir).reduce((a, r) => a + r[k], 0);
    const active = s.attacks || [];
    cards.replaceChildren(
      card('Incoming', bps(sum('incoming', 'bps')), pps(sum('incoming', 'pps'))),
      card('Outgoing', bps(sum('outgoing', 'bps')), pps(sum('outgoing', 'pps'))),
      card('Attacks now', String(active.length), '', active.length > 0),
      card('Rules held', String(s.mitigation ? s.mitigation.held : 0), ''),
      card('Exporters', String((s.collector.exporters || []).length), (s.engine.records || 0).toLocaleString() + ' records'),
      card('Hosts tracked', (s.engine.hosts_tracked || 0).toLocaleString(), (s.engine.targets_watched || 0) + ' watched'));
    attacks.replaceChildren(table([
      { title: 'Target', cell: a => attackLink(a.attack_id, a.target) },
      { title: 'Direction', cell: a => a.direction },
      { title: 'Vectors', cell: a => a.vectors.map(v => h('span', { class: 'tag' }, v)) },
      { title: 'Hostgroup', cell: a => a.hostgroup },
      { title: 'Packets/s', num: true, cell: a => pps(a.pps) },
      { title: 'Bits/s', num: true, cell: a => bps(a.bps) },
      { title: 'Since', cell: a => when(a.started_at) },
    ], active.map(a => Object.assign({ rowClass: 'active' }, a)), 'No attack going on.'));
    const top = list => table([
      { title: 'Target', cell: e => targetLink(e.target) },
      { title: 'Hostgroup', cell: e => e.hostgroup },
      { title: 'Packets/s', num: true, cell: e => pps(e.pps) },
      { title: 'Bits/s', num: true, cell: e => bps(e.bps) },
    ], list || [], 'Nothing above the quiet floors in the last second.');
    topHosts.replaceChildren(top(s.top && s.top.hosts_in));
    topPrefixes.replaceChildren(top(s.top && s.top.prefixes_in));
    const rows = [];
    for (const m of (s.mitigation && s.mitigation.mitigators) || []) {
      if (!m.channels.length) rows.push({ mitigator: m.name, channel: '–', state: 'established', queued: m.queued });
      for (const c of m.channels) rows.push({ mitigator: m.name, channel: c.name, state: c.state.state, error: c.state.error, queued: m.queued });
    }
    channels.replaceChildren(table([
      { title: 'Mitigator', cell: r => r.mitigator },
      { title: 'Channel', cell: r => r.channel },
      { title: 'State', cell: r => [status(r.state), r.error ? ' (' + r.error + ')' : ''] },
      { title: 'Queued', num: true, cell: r => r.queued },
    ], rows, 'No mitigator configured: rules are recorded only.'));
    draw();
  }
  if (state.status) render(state.status);
  state.onStatus.push(render);
}

function card(label, value, sub, alert) {
  return h('div', { class: 'card' + (alert ? ' alert' : '') },
    h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), h('div', { class: 'label' }, sub));
}

async function attacksPage(params) {
  const form = h('form', { class: 'filters', id: 'attack-filters' },
    h('label', {}, 'State', h('select', { name: 'active' },
      h('option', { value: '' }, 'all'), h('option', { value: 'true' }, 'active'), h('option', { value: 'false' }, 'ended'))),
    h('label', {}, 'Direction', h('select', { name: 'direction' },
      h('option', { value: '' }, 'both'), h('option', { value: 'incoming' }, 'incoming'), h('option', { value: 'outgoing' }, 'outgoing'))),
    h('label', {}, 'Vector', h('input', { name: 'vector', placeholder: 'syn_flood' })),
    h('label', {}, 'Target inside', h('input', { name: 'target', placeholder: '203.0.113.0/24' })),
    h('button', { type: 'submit' }, 'Filter'));
  for (const [k, v] of params) if (form.elements[k]) form.elements[k].value = v;
  const out = h('div', { class: 'panel', id: 'attack-list' }, h('p', { class: 'empty' }, 'Loading…'));
  form.addEventListener('submit', e => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const el of form.elements) if (el.name && el.value) q.set(el.name, el.value);
    location.hash = '#/attacks' + (q.toString() ? '?' + q : '');
  });
  view('Attacks', form, out);
  const q = new URLSearchParams(params);
  q.set('limit', '200');
  try {
    const list = await api('/api/v1/attacks?' + q);
    out.replaceChildren(table([
      { title: 'Target', cell: a => attackLink(a.attack_id, a.target) },
      { title: 'Direction', cell: a => a.direction },
      { title: 'Vectors', cell: a => a.vectors.map(v => h('span', { class: 'tag' }, v)) },
      { title: 'Hostgroup', cell: a => a.hostgroup },
      { title: 'Peak packets/s', num: true, cell: a => pps(a.peak_pps) },
      { title: 'Peak bits/s', num: true, cell: a => bps(a.peak_bps) },
      { title: 'Started', cell: a => when(a.started_at) },
      { title: 'Ended', cell: a => a.active ? status('active') : [when(a.ended_at), a.unfinished ? ' (daemon stopped)' : ''] },
    ], list.map(a => Object.assign({ rowClass: a.active ? 'active' : '' }, a)), 'No attack matches.'));
  } catch (e) {
    out.replaceChildren(h('p', { class: 'error' }, e.message));
  }
}

function shares(title, list, label) {
  return h('section', {}, h('h2', {}, title), h('div', { class: 'panel' }, table([
    { title: label, cell: r => String(r.value) },
    { title: 'Share', num: true, cell: r => pct(r.share) },
    { title: 'Packets', num: true, cell: r => (r.packets || 0).toLocaleString() },
  ], list || [], 'None.')));
}

function histogram(title, hist, unit) {
  if (!hist) return h('section', {}, h('h2', {}, title), h('p', { class: 'empty' }, 'None.'));
  let low = 0;
  const rows = hist.upper_bounds.map((b, i) => {
    const row = { value: (low === 0 && i === 0 ? '≤ ' : low + '–') + b + unit, share: hist.shares[i] };
    low = b + 1;
    return row;
  }).filter(r => r.share > 0);
  return h('section', {}, h('h2', {}, title), h('div', { class: 'panel' }, table([
    { title: 'Range', cell: r => r.value },
    { title: 'Share', num: true, cell: r => pct(r.share) },
  ], rows, 'None.')));
}

async function attackPage(id) {
  view('Attack', h('p', { class: 'empty' }, 'Loading…'));
  let detail;
  try {
    detail = await api('/api/v1/attacks/' + encodeURIComponent(id));
  } catch (e) {
    view('Attack', h('p', { class: 'error' }, e.message));
    return;
  }
  const s = detail.summary;
  const latest = detail.latest || {};
  const fp = latest.fingerprint || {};
  const chartEl = h('div', { class: 'chart panel', id: 'attack-chart', role: 'img', 'aria-label': 'The attack\'s packets and bits per second over time' });
  const rules = h('div', { class: 'panel', id: 'rules' });
  const held = h('div', { class: 'panel', id: 'held' });
  view('Attack on ' + s.target,
    h('dl', { class: 'kv panel' },
      h('dt', {}, 'Target'), h('dd', {}, targetLink(s.target)),
      h('dt', {}, 'State'), h('dd', {}, s.active ? status('active') : ['ended ', when(s.ended_at), s.unfinished ? ' (the daemon stopped while it went on)' : '']),
      h('dt', {}, 'Direction'), h('dd', {}, s.direction + (s.carpet_bombing ? ' · carpet bombing' : '')),
      h('dt', {}, 'Vectors'), h('dd', {}, s.vectors.map(v => h('span', { class: 'tag' }, v))),
      h('dt', {}, 'Hostgroup'), h('dd', {}, s.hostgroup),
      h('dt', {}, 'Started'), h('dd', {}, when(s.started_at)),
      h('dt', {}, 'Peak'), h('dd', {}, bps(s.peak_bps) + ' · ' + pps(s.peak_pps)),
      h('dt', {}, 'Sources'), h('dd', {}, '≈ ' + (fp.sources_estimate || s.sources).toLocaleString()),
      h('dt', {}, 'Trigger'), h('dd', {}, latest.trigger ? `${latest.trigger.metric} ${si(latest.trigger.value, '')} over ${latest.trigger.kind} ${si(latest.trigger.limit, '')}` : '–'),
      h('dt', {}, 'Evidence'), h('dd', {}, latest.evidence ? `${latest.evidence.samples} samples in ${latest.evidence.datagrams} datagrams` : '–'),
      h('dt', {}, 'Attack id'), h('dd', { class: 'mono' }, s.attack_id),
      latest.campaign ? [h('dt', {}, 'Campaign'), h('dd', { id: 'attack-campaign' },
        h('a', { href: '#/campaigns/' + encodeURIComponent(latest.campaign), class: 'target' }, latest.campaign),
        ' (its sources overlap other attacks\')')] : null),
    h('h2', {}, 'Timeline'), chartEl,
    h('h2', {}, 'Rules'), rules,
    h('h2', {}, 'Mitigations in place'), held,
    h('div', { class: 'grid2' },
      shares('Top sources', fp.top_sources, 'Source'),
      shares('Top source ports', fp.top_source_ports, 'Port')),
    h('div', { class: 'grid2' },
      shares('Top destination ports', fp.top_destination_ports, 'Port'),
      shares('TCP flags', fp.top_tcp_flags, 'Flags')),
    h('div', { class: 'grid2' },
      histogram('Packet sizes', fp.packet_sizes, ' B'),
      histogram('TTLs', fp.ttls, '')),
    h('h2', {}, 'Mitigation history'),
    h('div', { class: 'panel' }, table([
      { title: 'Time', cell: m => when(m.ts) },
      { title: 'Rule', cell: m => m.mitigation_id },
      { title: 'Change', cell: m => status(m.event.replace('mitigation_', '')) },
      { title: 'Why / where', cell: m => m.notice.reason || (m.notice.mitigators || []).map(x => x.mitigator + ': ' + x.status).join(', ') },
    ], detail.mitigations, 'No rule was placed for it.')));

  const t = detail.timeline;
  const points = [t.map(p => Date.parse(p.ts) / 1000), t.map(p => p.pps), t.map(p => p.bps)];
  chart(chartEl, points, ['packets/s', 'bits/s'], ['#ff6b6b', '#5aa9ff'], v => si(v, ''), ['pps', 'bps']);

  const decisions = (t.slice().reverse().find(p => p.mitigations) || {}).mitigations || [];
  rules.replaceChildren(table([
    { title: 'Rule', cell: d => h('span', { class: 'rule' }, d.text) },
    { title: 'Coverage', num: true, cell: d => pct(d.coverage) },
    { title: 'Collateral', num: true, cell: d => pct(d.collateral) },
    { title: 'Decision', cell: d => [status(d.status), d.reason ? ' — ' + d.reason : ''] },
  ], decisions, 'The plan decided no rule for it.'));

  async function refreshHeld() {
    let list = [];
    try { list = await api('/api/v1/mitigations'); } catch (e) { held.replaceChildren(h('p', { class: 'error' }, e.message)); return; }
    const mine = list.filter(x => x.mitigation.attack_id === s.attack_id || (x.manual && ruleTarget(x.mitigation.rule) === s.target));
    held.replaceChildren(
      table([
        { title: 'Rule', cell: x => h('span', { class: 'rule' }, x.mitigation.id) },
        { title: 'Since', cell: x => when(x.mitigation.since) },
        { title: 'Until', cell: x => x.withdraw_at ? when(x.withdraw_at) : (x.attack_active ? 'while the attack lasts' : 'hold-down') },
        { title: '', cell: x => h('button', { class: 'danger', 'data-withdraw': x.mitigation.id, onclick: () => withdraw(x.mitigation.id, refreshHeld) }, 'Withdraw') },
      ], mine, 'No rule in place for it now.'),
      h('div', { class: 'buttons' },
        h('button', { onclick: () => announce(s.target, 'blackhole', refreshHeld) }, 'Announce blackhole'),
        h('button', { onclick: () => announce(s.target, 'flowspec', refreshHeld) }, 'Announce FlowSpec')));
  }
  refreshHeld();
}

function ruleTarget(rule) {
  return rule.kind === 'blackhole' ? rule.prefix : rule.filter.destination;
}

async function withdraw(id, then) {
  if (!await confirmAction(`Withdraw ${id} from the network now?`)) return;
  try {
    await api('/api/v1/mitigations/' + encodeURIComponent(id), { method: 'DELETE' });
  } catch (e) {
    alert('Not withdrawn: ' + e.message);
  }
  then && then();
}

async function announce(target, kind, then) {
  if (!await confirmAction(`Announce a ${kind} rule for ${target}? It goes to the configured routers, with the same guard rails as the automatic ones.`)) return;
  try {
    const r = await api('/api/v1/mitigations', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ target, kind }),
    });
    alert(`${r.mitigation.id}: ${r.status}`);
  } catch (e) {
    alert('Not announced: ' + e.message);
  }
  then && then();
}

async function mitigationsPage() {
  const out = h('div', { class: 'panel', id: 'mitigation-list' }, h('p', { class: 'empty' }, 'Loading…'));
  view('Mitigations', out);
  async function refresh() {
    try {
      const list = await api('/api/v1/mitigations');
      out.replaceChildren(table([
        { title: 'Rule', cell: x => h('span', { class: 'rule' }, x.mitigation.id) },
        { title: 'Attack', cell: x => x.mitigation.attack_id ? attackLink(x.mitigation.attack_id, 'attack') : 'manual' },
        { title: 'Hostgroup', cell: x => x.mitigation.hostgroup },
        { title: 'Coverage', num: true, cell: x => pct(x.mitigation.coverage) },
        { title: 'Since', cell: x => when(x.mitigation.since) },
        { title: 'State', cell: x => x.mitigation.dry_run ? status('dry_run') : (x.unconfirmed ? 'unconfirmed since restart' : status('announced')) },
        { title: '', cell: x => h('button', { class: 'danger', onclick: () => withdraw(x.mitigation.id, refresh) }, 'Withdraw') },
      ], list, 'No rule held.'));
    } catch (e) {
      out.replaceChildren(h('p', { class: 'error' }, e.message));
    }
  }
  refresh();
}

async function exportersPage() {
  const out = h('div', {}, h('p', { class: 'empty' }, 'Loading…'));
  view('Exporters', out);
  try {
    const x = await api('/api/v1/exporters');
    out.replaceChildren(
      h('h2', {}, 'Listeners'),
      h('div', { class: 'panel' }, table([
        { title: 'Address', cell: l => l.local || '–' },
        { title: 'Datagrams', num: true, cell: l => l.datagrams.toLocaleString() },
        { title: 'Not allowed', num: true, cell: l => l.not_allowed.toLocaleString() },
        { title: 'Kernel drops', num: true, cell: l => l.kernel_drops.toLocaleString() },
      ], x.listeners, 'No listener.')),
      h('h2', {}, 'Exporters heard'),
      h('div', { class: 'panel' }, table([
        { title: 'Exporter', cell: e => e.address },
        { title: 'Datagrams', num: true, cell: e => e.datagrams.toLocaleString() },
        { title: 'Records', num: true, cell: e => e.records.toLocaleString() },
        { title: 'Decode errors', num: true, cell: e => e.decode_errors.toLocaleString() },
        { title: 'Sequence lost', num: true, cell: e => e.sequence_lost.toLocaleString() },
        { title: 'Implausible', num: true, cell: e => e.implausible.toLocaleString() },
        { title: 'Health', cell: e => (e.decode_errors || e.implausible || e.sequence_lost) ? status('failed') : status('established') },
      ], x.exporters, 'No exporter heard yet.')));
  } catch (e) {
    out.replaceChildren(h('p', { class: 'error' }, e.message));
  }
}

async function hostgroupsPage() {
  const out = h('div', {}, h('p', { class: 'empty' }, 'Loading…'));
  view('Hostgroups', out);
  try {
    const groups = await api('/api/v1/hostgroups');
    out.replaceChildren(...groups.map(g => h('section', {},
      h('h2', {}, g.hostgroup),
      h('p', {}, g.networks.join(', ') || '–'),
      h('div', { class: 'grid2' },
        limits('Incoming limits', g.incoming),
        limits('Outgoing limits', g.outgoing)),
      g.carpet ? limits('Carpet bombing', g.carpet) : h('p', { class: 'empty' }, 'Carpet detection off.'))));
  } catch (e) {
    out.replaceChildren(h('p', { class: 'error' }, e.message));
  }
}

function limits(title, map) {
  return h('div', { class: 'panel' }, h('h2', {}, title), table([
    { title: 'Limit', cell: r => r[0] },
    { title: 'Value', num: true, cell: r => typeof r[1] === 'number' ? r[1].toLocaleString() : String(r[1]) },
  ], Object.entries(map || {}), 'None.'));
}

async function searchPage(target) {
  const chartEl = h('div', { class: 'chart panel', id: 'target-chart' });
  const attacks = h('div', { class: 'panel', id: 'target-attacks' }, h('p', { class: 'empty' }, 'Loading…'));
  view(target, h('h2', {}, 'Traffic while among the busiest (incoming, last 15 minutes)'), chartEl,
    h('h2', {}, 'Attacks on it or inside it'), attacks);
  try {
    const series = await api('/api/v1/targets/' + target + '/series');
    if (series.points.length) {
      chart(chartEl, [series.points.map(p => p.t), series.points.map(p => p.pps)], ['packets/s'], ['#5aa9ff'], v => si(v, ''));
    } else {
      chartEl.replaceChildren(h('p', { class: 'empty' }, 'It was not among the ten busiest in the last 15 minutes.'));
    }
  } catch (e) {
    chartEl.replaceChildren(h('p', { class: 'error' }, e.message));
  }
  try {
    const list = await api('/api/v1/attacks?limit=200&target=' + encodeURIComponent(target));
    attacks.replaceChildren(table([
      { title: 'Target', cell: a => attackLink(a.attack_id, a.target) },
      { title: 'Vectors', cell: a => a.vectors.join(', ') },
      { title: 'Peak', num: true, cell: a => pps(a.peak_pps) },
      { title: 'Started', cell: a => when(a.started_at) },
      { title: 'State', cell: a => a.active ? status('active') : 'ended' },
    ], list, 'No attack on record.'));
  } catch (e) {
    attacks.replaceChildren(h('p', { class: 'error' }, e.message));
  }
}

// ---- Hunting: infected hosts and campaigns ------------------------------------------------------

const REASONS = {
  outgoing_attack: 'outgoing attack',
  scanning: 'scanning',
  c2_contact: 'C2 contact',
  beaconing: 'beaconing',
};
const reasonChip = kind => h('span', { class: 'tag reason reason-' + kind, 'data-reason': kind }, REASONS[kind] || kind);

// The "since" choices; the hash keeps the choice (`7d`), the API gets Unix ms.
const SINCE = [['1h', 'Last hour', 3600e3], ['6h', 'Last 6 hours', 6 * 3600e3], ['24h', 'Last 24 hours', 86400e3],
  ['7d', 'Last 7 days', 7 * 86400e3], ['30d', 'Last 30 days', 30 * 86400e3]];
function sinceMs(choice) {
  const preset = SINCE.find(s => s[0] === choice);
  return preset ? String(Date.now() - preset[2]) : choice;
}

// The API's query for the infected hosts' filter held in the hash.
function huntQuery(params) {
  const q = new URLSearchParams();
  if (params.get('hostgroup')) q.set('hostgroup', params.get('hostgroup'));
  q.set('since', sinceMs(params.get('since') || '24h'));
  return q;
}

// Saves an API answer as a file: through fetch, so a token travels as a header (never in a
// URL), then as a Blob.
async function download(path, filename) {
  const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
  const response = await fetch(path, { headers });
  if (response.status === 401) {
    askToken();
    throw new Error('a token is needed');
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || response.statusText);
  }
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  const a = h('a', { href, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}

async function infectedPage(params) {
  const form = h('form', { class: 'filters', id: 'infected-filter', 'aria-label': 'Filter the infected hosts' },
    h('label', {}, 'Hostgroup', h('select', { name: 'hostgroup' }, h('option', { value: '' }, 'all'))),
    h('label', {}, 'Seen', h('select', { name: 'since' }, SINCE.map(([v, text]) => h('option', { value: v }, text)))),
    h('button', { type: 'submit' }, 'Filter'));
  form.elements.since.value = params.get('since') || '24h';
  form.addEventListener('submit', e => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const el of form.elements) if (el.name && el.value && !(el.name === 'since' && el.value === '24h')) q.set(el.name, el.value);
    location.hash = '#/infected' + (q.toString() ? '?' + q : '');
  });
  const report = h('a', { id: 'download-csv', href: '/api/v1/infected/report?format=csv', download: 'floodwall-infected.csv' }, 'Download CSV');
  const reportStatus = h('span', { id: 'download-status', role: 'status', 'aria-live': 'polite' });
  report.addEventListener('click', async e => {
    e.preventDefault();
    const q = huntQuery(params);
    q.set('format', 'csv');
    const day = new Date().toISOString().slice(0, 10);
    reportStatus.textContent = '';
    try {
      await download('/api/v1/infected/report?' + q, `floodwall-infected-${day}.csv`);
    } catch (err) {
      reportStatus.textContent = 'Not downloaded: ' + err.message;
      reportStatus.className = 'error';
    }
  });
  // `data-filter`: which filter this list answers (a newer one replaces it).
  const out = h('div', { class: 'panel', id: 'infected-list', 'data-filter': params.toString(), 'aria-busy': 'true' }, h('p', { class: 'empty' }, 'Loading…'));
  view('Infected hosts',
    h('p', { class: 'intro' }, 'Hosts of the monitored networks that behave as bots: they attack outwards, scan for victims, talk to known C2 servers or beacon. One row of the abuse report per host and reason: ',
      report, ' ', reportStatus),
    form, out);
  api('/api/v1/hostgroups').then(groups => {
    for (const g of groups) form.elements.hostgroup.append(h('option', { value: g.hostgroup }, g.hostgroup));
    form.elements.hostgroup.value = params.get('hostgroup') || '';
  }).catch(() => {});
  const q = huntQuery(params);
  q.set('limit', '1000');
  try {
    const hosts = await api('/api/v1/infected?' + q);
    const keep = params.get('since') ? '?since=' + encodeURIComponent(params.get('since')) : '';
    out.replaceChildren(table([
      { title: 'Host', cell: x => h('a', { href: '#/infected/' + encodeURIComponent(x.host) + keep, class: 'target' }, x.host) },
      { title: 'Hostgroup', cell: x => x.hostgroup },
      { title: 'Prefix', cell: x => x.prefix ? h('span', { class: 'mono' }, x.prefix) : '–' },
      { title: 'Reasons', cell: x => x.reasons.map(r => reasonChip(r.kind)) },
      { title: 'Confidence', num: true, cell: x => pct(x.confidence) },
      { title: 'First seen', cell: x => when(x.first_seen) },
      { title: 'Last seen', cell: x => when(x.last_seen) },
    ], hosts, 'No infected host in this time.'));
  } catch (e) {
    out.replaceChildren(h('p', { class: 'error' }, e.message));
  }
  out.removeAttribute('aria-busy');
}

// One reason's evidence: only the fields its kind has.
function reasonEvidence(r) {
  const rows = [];
  const add = (label, value) => { if (value !== undefined && value !== null && value !== '' && !(Array.isArray(value) && !value.length)) rows.push(h('dt', {}, label), h('dd', {}, value)); };
  add('Confidence', pct(r.confidence));
  add('First seen', when(r.first_seen));
  add('Last seen', when(r.last_seen));
  add('Records', r.samples.toLocaleString());
  if (r.packets) add('Packets (scaled by sampling)', r.packets.toLocaleString());
  if (r.attack_id) add('Attack', attackLink(r.attack_id, r.attack_id));
  add('Vectors', (r.vectors || []).map(v => h('span', { class: 'tag' }, v)));
  if (r.destinations_sampled !== undefined) add('Destinations sampled', r.destinations_sampled.toLocaleString());
  if (r.destinations_estimated !== undefined) add('Destinations estimated', '≥ ' + r.destinations_estimated.toLocaleString() + ' (99 % lower bound)');
  if (r.mirai_signature !== undefined) add('Mirai signature', r.mirai_signature.toLocaleString() + ' probes with TCP sequence = destination');
  if (r.period_s !== undefined) add('Beacon period', r.period_s.toFixed(1) + ' s');
  if (r.jitter !== undefined) add('Jitter', pct(r.jitter) + ' (standard deviation / mean)');
  const peersLabel = { scanning: 'Destinations (a few)', outgoing_attack: 'Attack targets', c2_contact: 'C2 endpoints', beaconing: 'Peer' }[r.kind] || 'Peers';
  add(peersLabel, (r.peers || []).map(p => h('span', { class: 'tag mono' }, p)));
  add('Ports', (r.ports || []).map(p => h('span', { class: 'tag mono' }, String(p))));
  const parts = [h('dl', { class: 'kv' }, rows)];
  if ((r.indicators || []).length) {
    parts.push(h('h3', {}, 'Feed entries matched'), table([
      { title: 'Indicator', cell: i => h('span', { class: 'mono' }, i.value) },
      { title: 'Feed', cell: i => i.feed },
      { title: 'Malware', cell: i => i.malware || '–' },
    ], r.indicators, 'None.'));
  }
  return h('section', { class: 'panel reason-evidence', 'data-reason': r.kind, 'aria-labelledby': 'reason-' + r.kind },
    h('h2', { id: 'reason-' + r.kind }, reasonChip(r.kind)), parts);
}

async function infectedHostPage(host, params) {
  view('Infected host ' + host, h('p', { class: 'empty' }, 'Loading…'));
  const q = huntQuery(params);
  q.set('limit', '100000');
  let found;
  try {
    found = (await api('/api/v1/infected?' + q)).find(x => x.host === host);
  } catch (e) {
    view('Infected host ' + host, h('p', { class: 'error' }, e.message));
    return;
  }
  const back = h('p', {}, h('a', { href: '#/infected' + (params.toString() ? '?' + params : '') }, '← All infected hosts'));
  if (!found) {
    view('Infected host ' + host, back, h('p', { class: 'empty' }, 'Not listed as infected in this time.'));
    return;
  }
  view('Infected host ' + host, back,
    h('dl', { class: 'kv panel', id: 'infected-host' },
      h('dt', {}, 'Host'), h('dd', {}, targetLink(found.host)),
      h('dt', {}, 'Hostgroup'), h('dd', {}, found.hostgroup),
      h('dt', {}, 'Prefix'), h('dd', { class: 'mono' }, found.prefix || '–'),
      h('dt', {}, 'Reasons'), h('dd', {}, found.reasons.map(r => reasonChip(r.kind))),
      h('dt', {}, 'Confidence'), h('dd', {}, pct(found.confidence)),
      h('dt', {}, 'First seen'), h('dd', {}, when(found.first_seen)),
      h('dt', {}, 'Last seen'), h('dd', {}, when(found.last_seen))),
    h('div', { id: 'reasons' }, found.reasons.map(reasonEvidence)));
}

async function campaignsPage(selected) {
  const out = h('div', { class: 'panel', id: 'campaign-list' }, h('p', { class: 'empty' }, 'Loading…'));
  view('Campaigns',
    h('p', { class: 'intro' }, 'Attacks whose sources overlap: one bot pool coming back. Sources are estimated over all of a campaign\'s attacks together.'),
    out);
  try {
    const list = await api('/api/v1/campaigns');
    const attacks = c => {
      const links = c.attacks.map(id => h('li', {}, attackLink(id, id)));
      const more = c.attack_count > c.attacks.length ? h('li', { class: 'empty' }, `and ${(c.attack_count - c.attacks.length).toLocaleString()} earlier`) : null;
      const items = h('ul', { class: 'plain nowrap' }, links, more);
      if (c.attacks.length <= 4) return items;
      return h('details', {}, h('summary', {}, `${c.attack_count.toLocaleString()} attacks`), items);
    };
    out.replaceChildren(table([
      { title: 'Campaign', cell: c => h('span', { class: 'mono nowrap', id: 'campaign-' + c.campaign }, c.campaign) },
      { title: 'Attacks', cell: attacks },
      { title: 'Sources (estimated)', num: true, cell: c => '≈ ' + c.sources.toLocaleString() },
      { title: 'Targets', cell: c => c.targets.map(t => h('span', { class: 'tag' }, targetLink(t))) },
      { title: 'Vectors', cell: c => c.vectors.map(v => h('span', { class: 'tag' }, v)) },
      { title: 'Direction', cell: c => c.direction },
      { title: 'First seen', cell: c => when(c.first_seen) },
      { title: 'Last seen', cell: c => when(c.last_seen) },
    ], list.map(c => Object.assign({ rowClass: c.campaign === selected ? 'selected' : '' }, c)), 'No campaign: no two attacks shared their sources yet.'));
    if (selected) {
      const row = out.querySelector('tr.selected');
      if (row) {
        row.setAttribute('aria-current', 'true');
        row.scrollIntoView({ block: 'center' });
      } else {
        out.prepend(h('p', { class: 'error' }, `Campaign ${selected} is no longer kept.`));
      }
    }
  } catch (e) {
    out.replaceChildren(h('p', { class: 'error' }, e.message));
  }
}

// ---- Routing -----------------------------------------------------------------------------------

function route() {
  state.onStatus = [];
  state.chart = null;
  const hash = location.hash.slice(1) || '/';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  const page = parts[0] || 'overview';
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('current', a.dataset.nav === page);
    if (a.dataset.nav === page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const rest = decodeURIComponent(parts.slice(1).join('/'));
  if (page === 'attacks' && rest) attackPage(rest);
  else if (page === 'attacks') attacksPage(params);
  else if (page === 'mitigations') mitigationsPage();
  else if (page === 'exporters') exportersPage();
  else if (page === 'hostgroups') hostgroupsPage();
  else if (page === 'search' && rest) searchPage(rest);
  else if (page === 'infected' && rest) infectedHostPage(rest, params);
  else if (page === 'infected') infectedPage(params);
  else if (page === 'campaigns') campaignsPage(rest);
  else overview();
  document.getElementById('view').focus({ preventScroll: true });
}

document.addEventListener('DOMContentLoaded', () => {
  const search = document.getElementById('search');
  search.addEventListener('submit', e => {
    e.preventDefault();
    const q = search.elements.q.value.trim();
    if (q) location.hash = '#/search/' + encodeURIComponent(q);
  });
  document.addEventListener('keydown', e => {
    const typing = ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement.tagName);
    if (e.key === '/' && !typing) { e.preventDefault(); search.elements.q.focus(); }
  });
  window.addEventListener('hashchange', route);
  route();
  stream();
});
