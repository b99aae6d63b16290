// Drives Debian's Chromium through Floodwall's dashboard for crates/floodwall/tests/dashboard.rs,
// printing one JSON line per step on stdout. Two walks (MODE):
// - `attack` (default): a live flood and its rule
//   {"step":"ready"}                          logged in, the live stream connected
//   {"step":"attack_seen","at_ms":...}        the attack's row (target and vector) appeared
//   {"step":"withdrawn","rule":...}           the rule withdrawn through the attack page
//   {"step":"done","errors":[...]}            the pages visited, the browser's errors
//   Environment: VICTIM, VECTOR, RULE (the rule id to withdraw).
// - `hunt`: infected hosts and campaigns, found before the browser starts
//   {"step":"ready"}
//   {"step":"infected","rows":[...]}          the Infected hosts table, cell by cell
//   {"step":"filtered","hash":...,"rows":n}   the filter applied (and one that matches nothing)
//   {"step":"report","name":...,"text":...}   the "Download CSV" file, as saved
//   {"step":"host","reasons":{...}}           a host's page: each reason's evidence (dt -> dd)
//   {"step":"crafted_host",...}               C2 contact and beaconing, from a crafted answer
//   {"step":"campaigns","rows":[...]}         the Campaigns table
//   {"step":"campaign_link","campaign":...}   an attack of it shows the campaign, linked back
//   {"step":"done","errors":[...]}
//   Environment: HOST (the host to open).
// Both: FLOODWALL_URL, FLOODWALL_TOKEN, SCREENSHOTS (a directory, optional).
import { chromium } from 'playwright-core';

const url = process.env.FLOODWALL_URL;
const token = process.env.FLOODWALL_TOKEN;
const victim = process.env.VICTIM;
const vector = process.env.VECTOR;
const rule = process.env.RULE;
const shots = process.env.SCREENSHOTS;
const mode = process.env.MODE || 'attack';
const say = o => console.log(JSON.stringify(o));

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, colorScheme: 'dark' });
  const page = await context.newPage();
  page.on('pageerror', e => errors.push('page error: ' + e.message));
  page.on('console', m => { if (m.type() === 'error' && !m.text().includes('401')) errors.push('console: ' + m.text()); });

  // The daemon wants a token: the page asks for it.
  await page.goto(url + '/');
  await page.waitForSelector('#login[open]', { timeout: 10000 });
  await page.fill('#login-token', token);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#live.on', { timeout: 10000 });
  say({ step: 'ready' });

  if (mode === 'hunt') await hunt(page); else await attack(page);
} catch (e) {
  errors.push('step failed: ' + e.message);
} finally {
  say({ step: 'done', errors });
  await browser.close();
}

async function attack(page) {
  // The attack appears in "Attacks now" with its target and vector.
  await page.waitForFunction(([victim, vector]) => {
    const rows = [...document.querySelectorAll('#active-attacks tbody tr')];
    return rows.some(r => r.textContent.includes(victim) && r.textContent.includes(vector));
  }, [victim, vector], { timeout: 60000, polling: 50 });
  say({ step: 'attack_seen', at_ms: Date.now() });
  await page.waitForTimeout(3000);
  if (shots) await page.screenshot({ path: shots + '/overview.png', fullPage: true });

  // Without a mouse: focus the attack's link and press Enter.
  await page.focus(`#active-attacks a[href^="#/attacks/"]`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#attack-chart canvas', { timeout: 10000 });
  await page.waitForFunction(victim => document.querySelector('#rules').textContent.includes('blackhole ' + victim),
    victim, { timeout: 10000 });
  const button = `#held button[data-withdraw="${rule}"]`;
  await page.waitForSelector(button, { timeout: 10000 });
  if (shots) await page.screenshot({ path: shots + '/attack.png', fullPage: true });

  // Withdraw: the button, then the confirmation (Cancel has the focus; Tab to Confirm).
  await page.focus(button);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#confirm[open]');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.waitForSelector(button, { state: 'detached', timeout: 10000 });
  say({ step: 'withdrawn', rule });

  for (const [hash, selector, name] of [
    ['#/attacks', '#attack-list table', 'attacks'],
    ['#/mitigations', '#mitigation-list', 'mitigations'],
    ['#/exporters', 'main table', 'exporters'],
    ['#/hostgroups', 'main table', 'hostgroups'],
    ['#/search/' + encodeURIComponent(victim), '#target-attacks table', 'search'],
  ]) {
    await page.goto(url + '/' + hash);
    await page.waitForSelector(selector, { timeout: 10000 });
    if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  }
}

// The rows of a table, as the cells' text; chips (reasons, vectors, targets) as lists.
function rowsOf(page, selector) {
  return page.$$eval(selector + ' tbody tr', trs => trs.map(tr => [...tr.cells].map(td => {
    const chips = [...td.querySelectorAll('.tag')];
    return chips.length ? chips.map(c => c.dataset.reason || c.textContent) : td.textContent;
  })));
}

async function hunt(page) {
  const host = process.env.HOST;
  // From the menu, without the mouse.
  await page.focus('nav a[data-nav="infected"]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#infected-list table', { timeout: 10000 });
  const current = await page.$eval('nav a[data-nav="infected"]', a => a.getAttribute('aria-current'));
  if (current !== 'page') throw new Error('the Infected hosts entry is not the current page');
  say({ step: 'infected', title: await page.title(), headers: await page.$$eval('#infected-list th', ths => ths.map(th => th.textContent)), rows: await rowsOf(page, '#infected-list') });
  if (shots) await page.screenshot({ path: shots + '/infected.png', fullPage: true });

  // The filter: a hostgroup and a shorter time, kept in the address.
  await page.waitForSelector('#infected-filter select[name="hostgroup"] option[value="default"]', { state: 'attached', timeout: 10000 });
  await page.selectOption('#infected-filter select[name="hostgroup"]', 'default');
  await page.selectOption('#infected-filter select[name="since"]', '1h');
  await page.click('#infected-filter button[type="submit"]');
  const filtered = '#infected-list[data-filter="hostgroup=default&since=1h"]:not([aria-busy])';
  await page.waitForSelector(filtered, { timeout: 10000 });
  const hash = await page.evaluate(() => location.hash);
  const filteredRows = (await rowsOf(page, filtered)).length;
  await page.goto(url + '/#/infected?hostgroup=nobody');
  const none = '#infected-list[data-filter="hostgroup=nobody"]:not([aria-busy])';
  await page.waitForSelector(none, { timeout: 10000 });
  say({ step: 'filtered', hash, rows: filteredRows, none: await page.$eval(none, e => e.textContent) });

  // The abuse report: with a token it is fetched with the header, then saved.
  await page.goto(url + '/#/infected');
  await page.waitForSelector('#infected-list table', { timeout: 10000 });
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 10000 }),
    page.click('#download-csv'),
  ]);
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(await download.path(), 'utf8');
  say({ step: 'report', name: download.suggestedFilename(), text });

  // A host's evidence, reason by reason.
  await page.click(`#infected-list a[href="#/infected/${host}"], #infected-list a[href^="#/infected/${host}?"]`);
  await page.waitForSelector('#reasons section', { timeout: 10000 });
  const reasons = await page.$$eval('#reasons section', sections => Object.fromEntries(sections.map(s => {
    const kv = {};
    const dts = [...s.querySelectorAll('dt')];
    for (const dt of dts) kv[dt.textContent] = dt.nextElementSibling.textContent;
    kv.links = [...s.querySelectorAll('a')].map(a => a.getAttribute('href'));
    return [s.dataset.reason, kv];
  })));
  say({ step: 'host', title: await page.title(), reasons });

  // What no scenario here produces (a C2 feed's contact, beaconing, Mirai's signature), from a crafted
  // answer: their evidence shows, and markup in it stays text.
  const t = new Date().toISOString();
  const fixture = [{
    host: '198.18.9.9', prefix: '198.18.0.0/15', hostgroup: 'default', first_seen: t, last_seen: t, confidence: 0.93,
    reasons: [
      { kind: 'c2_contact', first_seen: t, last_seen: t, confidence: 0.9, samples: 4, packets: 4000, peers: ['203.0.113.66'], ports: [23],
        indicators: [{ value: '203.0.113.66:23', feed: '<img src=x onerror="window.pwned=1">', malware: 'mirai' }] },
      { kind: 'scanning', first_seen: t, last_seen: t, confidence: 0.99, samples: 9, packets: 9000, peers: ['100.64.1.2'], ports: [23, 2323],
        destinations_sampled: 9, destinations_estimated: 3900, mirai_signature: 7 },
      { kind: 'beaconing', first_seen: t, last_seen: t, confidence: 0.3, samples: 12, peers: ['192.0.2.80'], ports: [443], period_s: 60.2, jitter: 0.031 },
    ],
  }];
  await page.route(/\/api\/v1\/infected\?/, route => route.fulfill({ json: fixture }));
  await page.goto(url + '/#/infected/198.18.9.9');
  await page.waitForSelector('#reasons section[data-reason="beaconing"]', { timeout: 10000 });
  const crafted = await page.$$eval('#reasons section', sections => Object.fromEntries(sections.map(s => {
    const kv = {};
    for (const dt of s.querySelectorAll('dt')) kv[dt.textContent] = dt.nextElementSibling.textContent;
    kv.indicators = [...s.querySelectorAll('tbody tr')].map(tr => [...tr.cells].map(td => td.textContent));
    return [s.dataset.reason, kv];
  })));
  const images = await page.$$eval('main img', imgs => imgs.length);
  const pwned = await page.evaluate(() => window.pwned === 1);
  await page.unroute(/\/api\/v1\/infected\?/);
  say({ step: 'crafted_host', reasons: crafted, images, pwned });

  // Campaigns, from the menu.
  await page.focus('nav a[data-nav="campaigns"]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#campaign-list table', { timeout: 10000 });
  const campaignRows = await page.$$eval('#campaign-list tbody tr', trs => trs.map(tr => ({
    campaign: tr.cells[0].textContent,
    attacks: [...tr.cells[1].querySelectorAll('a')].map(a => a.textContent),
    sources: tr.cells[2].textContent,
    targets: [...tr.cells[3].querySelectorAll('.tag')].map(t => t.textContent),
    vectors: [...tr.cells[4].querySelectorAll('.tag')].map(t => t.textContent),
    direction: tr.cells[5].textContent,
    first_seen: tr.cells[6].textContent,
    last_seen: tr.cells[7].textContent,
  })));
  say({ step: 'campaigns', headers: await page.$$eval('#campaign-list th', ths => ths.map(th => th.textContent)), rows: campaignRows });
  if (shots) await page.screenshot({ path: shots + '/campaigns.png', fullPage: true });

  // One of its attacks names the campaign, and links back to it.
  await page.evaluate(() => { for (const d of document.querySelectorAll('#campaign-list details')) d.open = true; });
  await page.click('#campaign-list tbody tr a[href^="#/attacks/"]');
  await page.waitForSelector('#attack-campaign a', { timeout: 10000 });
  const named = await page.$eval('#attack-campaign a', a => a.textContent);
  await page.click('#attack-campaign a');
  await page.waitForSelector('#campaign-list tr.selected[aria-current="true"]', { timeout: 10000 });
  const selected = await page.$eval('#campaign-list tr.selected', tr => tr.cells[0].textContent);
  say({ step: 'campaign_link', campaign: named, selected });
}
