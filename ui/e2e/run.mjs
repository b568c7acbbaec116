// End-to-end tests: Chromium (playwright-core) against a real `kitedesk serve`
// with real webhooks sent through the ingress. Run: `npm run e2e`
// (KITEDESK_BIN=path/to/kitedesk, else $CARGO_TARGET_DIR or ../target/debug).
// `node e2e/run.mjs <name part>` runs only the matching tests.

import { assert, assertEq, launchBrowser, postHook, runTests, sendTest, startDaemon } from './harness.mjs';
import { outboxTests } from './outbox.mjs';

const WAIT = 10_000;
// The embedded default sources, plus a short outbox schedule so a failing
// forward becomes a dead letter within the test (one retry after 50 ms).
const unsigned = (name, type) => ({ name, type, verify: { allowUnsigned: true } });
const daemon = await startDaemon({
  manifest: {
    sources: [unsigned('github', 'github'), unsigned('stripe', 'stripe'), unsigned('paperclip', 'paperclip'), unsigned('kiket', 'kiket'), unsigned('demo', 'generic')],
    outbox: { retry: ['50ms'], jitter: 0 },
  },
});
const browser = await launchBrowser();
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await ctx.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));

/** Local ids of the events we sent, by what they are. */
const sent = {};

/** The ids of the event rows currently rendered, top to bottom. */
async function rowIds(p = page) {
  return p.$$eval('[data-testid="event-row"]', (els) => els.map((e) => Number(e.getAttribute('data-id'))));
}

/** Wait until the rendered rows are exactly `ids` (order-insensitive). */
async function waitRows(ids, p = page, msg = 'rows') {
  const want = [...ids].sort((a, b) => a - b);
  try {
    await p.waitForFunction(
      (w) => {
        const got = [...document.querySelectorAll('[data-testid="event-row"]')].map((e) => Number(e.getAttribute('data-id'))).sort((a, b) => a - b);
        return JSON.stringify(got) === JSON.stringify(w);
      },
      want,
      { timeout: WAIT },
    );
  } catch {
    assertEq((await rowIds(p)).sort((a, b) => a - b), want, msg);
  }
}

const tests = [
  ['without a token the UI shows "not signed in" and no data', async () => {
    const anon = await browser.newContext();
    const p = await anon.newPage();
    await p.goto(daemon.base + '/');
    await p.getByRole('heading', { name: 'Not signed in' }).waitFor({ timeout: WAIT });
    assertEq(await p.locator('[data-testid="event-row"]').count(), 0, 'no event rows without a session');
    await p.goto(daemon.base + '/?token=kd_wrong');
    await p.getByText("is not this daemon's API token").waitFor({ timeout: WAIT });
    assert(!p.url().includes('kd_wrong'), `the token is removed from the URL (${p.url()})`);
    assertEq((await anon.cookies()).length, 0, 'a wrong token sets no cookie');
    await anon.close();
  }],

  ['?token= signs in with an HttpOnly SameSite=Strict cookie and leaves the URL', async () => {
    await page.goto(`${daemon.base}/?token=${daemon.token}`);
    await page.getByTestId('first-run').waitFor({ timeout: WAIT });
    assertEq(new URL(page.url()).search, '', 'token removed from the address bar');
    const [cookie] = await ctx.cookies();
    assertEq([cookie?.name, cookie?.httpOnly, cookie?.sameSite], ['kitedesk_token', true, 'Strict'], 'session cookie');
  }],

  ['first run: "send a test event" goes through the ingress and shows up live', async () => {
    await page.getByTestId('send-test-github').click();
    await page.locator('[data-testid="event-row"]').first().waitFor({ timeout: WAIT });
    const ids = await rowIds();
    assertEq(ids.length, 1, 'one event after one test event');
    const ev = await daemon.api(`/api/events/${ids[0]}`);
    assertEq([ev.json.source_name, ev.json.type], ['github', 'com.github.push'], 'the stored event is the GitHub push sample');
    sent.firstRun = ids[0];
  }],

  ['the live list updates when webhooks arrive', async () => {
    sent.push = [sent.firstRun, await sendTest(daemon, 'github', 'push')];
    sent.workflow = await sendTest(daemon, 'github', 'workflow_run');
    sent.ping = await sendTest(daemon, 'github', 'ping');
    sent.failed = [await sendTest(daemon, 'stripe', 'payment_intent.payment_failed'), await sendTest(daemon, 'stripe', 'payment_intent.payment_failed')];
    sent.succeeded = await sendTest(daemon, 'stripe', 'payment_intent.succeeded');
    sent.sla = await sendTest(daemon, 'kiket', 'workflow.sla_status');
    sent.xss = (await postHook(daemon, 'demo', {
      type: 'xss.probe',
      message: '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>',
      html: '<b>bold?</b><iframe src="javascript:alert(1)"></iframe>',
    })).id;
    const all = [...sent.push, sent.workflow, sent.ping, ...sent.failed, sent.succeeded, sent.sla, sent.xss];
    await waitRows(all, page, 'every sent webhook appears in the open list without a reload');
    const ids = await rowIds();
    assertEq(ids[0], sent.xss, 'newest first');
  }],

  ['filters narrow the list and live in the URL', async () => {
    await page.getByLabel('Source').selectOption('stripe');
    await waitRows([...sent.failed, sent.succeeded], page, 'source=stripe');
    assert(new URL(page.url()).searchParams.get('source') === 'stripe', 'source in the URL');
    await page.getByLabel('Minimum importance').selectOption('critical');
    await waitRows(sent.failed, page, 'stripe + ≥ critical');
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('Type (glob)').fill('com.github.*');
    await page.getByLabel('Type (glob)').press('Enter');
    await waitRows([...sent.push, sent.workflow, sent.ping], page, 'type glob com.github.*');
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('Verification').selectOption('true');
    await waitRows([], page, 'the default config verifies nothing (no secrets set)');
    await page.getByRole('button', { name: 'Clear' }).click();
  }],

  ['full-text search narrows the list; "/" focuses it', async () => {
    await page.evaluate(() => document.activeElement?.blur());
    await page.keyboard.press('/');
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
    assertEq(focused, 'Full-text search', '"/" focuses the search box');
    await page.keyboard.type('declined');
    await page.keyboard.press('Enter');
    await waitRows(sent.failed, page, 'q=declined matches the failed payments only');
    assertEq(new URL(page.url()).searchParams.get('q'), 'declined', 'q in the URL');
    await page.keyboard.press('Escape');
  }],

  ['a deep link restores the view', async () => {
    const p = await ctx.newPage();
    await p.goto(`${daemon.base}/?source=github&importance=high`);
    await waitRows([sent.workflow], p, 'deep link source=github&importance=high');
    assertEq(await p.getByLabel('Source').inputValue(), 'github', 'source select restored');
    assertEq(await p.getByLabel('Minimum importance').inputValue(), 'high', 'importance select restored');
    await p.goto(`${daemon.base}/?q=declined&source=stripe`);
    await waitRows(sent.failed, p, 'deep link with search');
    assertEq(await p.getByLabel('Full-text search').inputValue(), 'declined', 'search box restored');
    await p.close();
  }],

  ['j/k and Enter open an event; the detail page shows the payload', async () => {
    await page.goto(`${daemon.base}/?source=kiket`);
    await waitRows([sent.sla], page, 'kiket only');
    await page.evaluate(() => document.activeElement?.blur());
    await page.keyboard.press('j');
    await page.keyboard.press('Enter');
    await page.waitForURL(`**/events/${sent.sla}`, { timeout: WAIT });
    await page.getByTestId('json-tree').waitFor({ timeout: WAIT });
    const payload = JSON.parse((await daemon.api(`/api/events/${sent.sla}`)).json.payload);
    const tree = await page.getByTestId('json-tree').innerText();
    assert(tree.includes(payload.event ?? 'workflow.sla_status'), 'the tree shows the payload');
    await page.getByRole('tab', { name: 'Raw' }).click();
    const raw = await page.getByTestId('payload-raw').innerText();
    assertEq(JSON.parse(raw), payload, 'raw view is the payload as received');
    assert((await page.getByTestId('importance-reason').innerText()).length > 0, 'importance reason shown');
    assert((await page.getByTestId('verification').innerText()).includes('not verified'), 'verification result shown');
  }],

  ['the JSON tree search finds a nested value', async () => {
    await page.goto(`${daemon.base}/events/${sent.failed[0]}`);
    await page.getByLabel('Find in payload').fill('card_declined');
    const n = await page.getByTestId('json-matches').innerText();
    assert(/^[1-9]\d* match/.test(n), `matches counted (${n})`);
    assert((await page.locator('.hit').count()) >= 1, 'a match is highlighted and its parents opened');
  }],

  ['an XSS payload stays text in the list and the detail page', async () => {
    await page.goto(`${daemon.base}/`);
    await page.locator(`[data-id="${sent.xss}"]`).waitFor({ timeout: WAIT });
    const rowText = await page.locator(`[data-id="${sent.xss}"]`).innerText();
    assert(rowText.includes('<img src=x onerror='), `the summary shows markup as text (${rowText})`);
    await page.goto(`${daemon.base}/events/${sent.xss}`);
    await page.getByTestId('json-tree').waitFor({ timeout: WAIT });
    await page.getByRole('button', { name: 'Expand all' }).click();
    assertEq(await page.locator('main img, main script, main iframe, main b').count(), 0, 'no element from the payload');
    assert((await page.getByTestId('event-summary').innerText()).includes('<script>'), 'the summary heading shows <script> as text');
    await page.getByRole('tab', { name: 'Raw' }).click();
    assert((await page.getByTestId('payload-raw').innerText()).includes('<iframe'), 'raw view shows it as text');
    assertEq(await page.evaluate(() => window.__pwned), undefined, 'no payload script ran');
  }],

  ['pages whose API is missing say so instead of going blank', async () => {
    for (const [path, api] of [['/deliveries', '/api/deliveries'], ['/secrets', '/api/secrets'], ['/settings', '/api/settings/notifications']]) {
      const r = await daemon.api(api);
      await page.goto(daemon.base + path);
      if (r.status === 404 && r.json?.code === 'no_route') {
        await page.locator('[data-code="no_route"]').first().waitFor({ timeout: WAIT });
        assert((await page.locator('[data-code="no_route"]').first().innerText()).includes('Not available'), `${path} explains the missing endpoint`);
      } else {
        await page.locator('h1').first().waitFor({ timeout: WAIT });
      }
    }
  }],

  ['the dashboard draws the volume chart', async () => {
    await page.goto(`${daemon.base}/dashboard`);
    await page.locator('[data-testid="volume-chart"] canvas').waitFor({ timeout: WAIT });
    await page.getByTestId('count-critical').waitFor({ timeout: WAIT });
    const crit = Number(await page.getByTestId('count-critical').innerText());
    assert(crit >= sent.failed.length + 1, `critical count (${crit}) includes the failed payments and the SLA breach`);
  }],

  ['the live feed reconnects after the daemon restarts', async () => {
    await page.goto(`${daemon.base}/`);
    await page.locator('.live-live').waitFor({ timeout: WAIT });
    await daemon.restart();
    const id = await sendTest(daemon, 'paperclip');
    await page.locator(`[data-id="${id}"]`).waitFor({ timeout: 2 * WAIT });
    assertEq(await page.locator('.live-live').count(), 1, 'the feed says live again');
  }],

  ...outboxTests({ daemon, browser, ctx, page, sent, waitRows, WAIT }),

  ['a long list renders only the rows in view, recycling row elements while scrolling', async () => {
    const N = 260;
    const ids = [];
    for (let i = 0; i < N; i += 20) {
      const batch = Array.from({ length: Math.min(20, N - i) }, (_, j) => postHook(daemon, 'demo', { message: `scrollprobe ${i + j}` }));
      for (const r of await Promise.all(batch)) ids.push(r.id);
    }
    ids.sort((a, b) => b - a); // newest first, as listed
    const p = await ctx.newPage();
    await p.goto(`${daemon.base}/?q=scrollprobe`);
    await p.locator(`[data-id="${ids[0]}"]`).waitFor({ timeout: WAIT });
    /** The rendered rows as [position, id, top px], by position; the element count. */
    const rendered = () =>
      p.$$eval('[data-testid="event-row"]', (els) => ({
        count: els.length,
        rows: els
          .map((e) => [Number(e.getAttribute('aria-posinset')), Number(e.getAttribute('data-id')), parseFloat(e.style.top)])
          .sort((a, b) => a[0] - b[0]),
      }));
    const check = (r, what) => {
      const from = r.rows[0][0];
      r.rows.forEach(([pos, id, top], i) => {
        assertEq(pos, from + i, `${what}: consecutive positions`);
        assertEq(id, ids[pos - 1], `${what}: row ${pos} is the ${pos}th newest`);
        assertEq(top, (pos - 1) * 34, `${what}: row ${pos} sits at its own offset`);
      });
    };
    const atTop = await rendered();
    check(atTop, 'top');
    assert(atTop.count < 80, `only the rows around the viewport are rendered (${atTop.count})`);
    const kept = await p.locator('[data-testid="event-row"]').nth(5).elementHandle();
    await p.evaluate(() => (document.querySelector('.list').scrollTop = 150 * 34));
    await p.waitForFunction(() => !!document.querySelector('[aria-posinset="160"]'), null, { timeout: WAIT });
    const middle = await rendered();
    check(middle, 'scrolled to row 150');
    assert(middle.count < 80, `still only the rows around the viewport (${middle.count})`);
    assert(await kept.evaluate((e) => e.isConnected), 'a row element is reused, not replaced');
    await p.evaluate(() => (document.querySelector('.list').scrollTop = 1e6));
    await p.waitForFunction((n) => !!document.querySelector(`[aria-posinset="${n}"][aria-setsize="${n}"]`), N, { timeout: WAIT });
    check(await rendered(), 'scrolled to the end');
    await p.close();
  }],

  ['settings: a relay link is added, refused with its field, and removed; retention is saved', async () => {
    await page.goto(`${daemon.base}/settings`);
    const form = page.getByRole('form', { name: 'Add a relay link' });
    await form.waitFor({ timeout: WAIT });
    await form.getByLabel('Name', { exact: true }).fill('e2e-link');
    await form.getByLabel('URL', { exact: true }).fill('ftp://relay.example');
    await form.getByLabel('Team', { exact: true }).fill('t1');
    await form.getByRole('button', { name: 'Add link' }).click();
    await page.locator('[data-code="invalid_relay"]').waitFor({ timeout: WAIT });
    assert((await page.locator('[data-code="invalid_relay"]').innerText()).includes('url:'), 'the error names the URL field');
    await form.getByLabel('URL', { exact: true }).fill('ws://127.0.0.1:9/ws');
    await form.getByLabel('Scopes').fill('source:github');
    await form.getByRole('button', { name: 'Add link' }).click();
    const row = page.locator('[data-relay="e2e-link"]');
    await row.waitFor({ timeout: WAIT });
    assert((await row.innerText()).includes('added here'), `the link shows where it comes from (${await row.innerText()})`);
    const listed = await daemon.api('/api/relays');
    assertEq(listed.json.relays.map((r) => r.name), ['e2e-link'], 'the API lists the added link');
    await row.getByRole('button', { name: 'Remove' }).click();
    await row.waitFor({ state: 'detached', timeout: WAIT });
    assertEq((await daemon.api('/api/relays')).json.relays.length, 0, 'removed');

    const ret = page.getByRole('form', { name: 'Retention' });
    await ret.getByLabel(/at most \(events/).fill('1000000');
    await ret.getByRole('button', { name: 'Save retention' }).click();
    await ret.getByRole('status').waitFor({ timeout: WAIT });
    assertEq((await daemon.api('/api/settings/retention')).json.max_events, 1000000, 'retention saved');
    await ret.getByRole('button', { name: "Use kite.json's" }).click();
    await page.waitForFunction(() => !document.body.innerText.includes("Use kite.json's"), null, { timeout: WAIT });
    assertEq((await daemon.api('/api/settings/retention')).json.origin, 'manifest', 'retention reset');
  }],

  ['no uncaught errors in the page', async () => {
    assertEq(pageErrors, [], 'page errors');
  }],
];

let failed = 1;
try {
  failed = await runTests(tests, { only: process.argv[2] });
} finally {
  await browser.close();
  await daemon.stop();
}
process.exit(failed ? 1 : 0);
