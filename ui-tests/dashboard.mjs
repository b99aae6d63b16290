// Drives Debian's Chromium through Floodwall's dashboard for crates/floodwall/tests/dashboard.rs,
// printing one JSON line per step on stdout:
//   {"step":"ready"}                          logged in, the live stream connected
//   {"step":"attack_seen","at_ms":...}        the attack's row (target and vector) appeared
//   {"step":"withdrawn","rule":...}           the rule withdrawn through the attack page
//   {"step":"done","errors":[...]}            the pages visited, the browser's errors
// Environment: FLOODWALL_URL, FLOODWALL_TOKEN, VICTIM, VECTOR, RULE (the rule id to withdraw),
// SCREENSHOTS (a directory, optional).
import { chromium } from 'playwright-core';

const url = process.env.FLOODWALL_URL;
const token = process.env.FLOODWALL_TOKEN;
const victim = process.env.VICTIM;
const vector = process.env.VECTOR;
const rule = process.env.RULE;
const shots = process.env.SCREENSHOTS;
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
} catch (e) {
  errors.push('step failed: ' + e.message);
} finally {
  say({ step: 'done', errors });
  await browser.close();
}
