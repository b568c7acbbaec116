// End-to-end tests: Chromium (playwright-core) against a real `kitedesk serve`
// with real webhooks sent through the ingress. Run: `npm run e2e`
// (KITEDESK_BIN=path/to/kitedesk, else $CARGO_TARGET_DIR or ../target/debug).
// `node e2e/run.mjs <name part>` runs only the matching tests.

import { assert, assertEq, launchBrowser, postHook, runTests, sendTest, startDaemon, startReceiver } from './harness.mjs';
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
    // A dashboard open beside it shows the link, and drops it live when it is removed.
    const dash = await ctx.newPage();
    await dash.goto(`${daemon.base}/dashboard`);
    const linkRow = dash.locator('[data-testid="connection"]', { hasText: 'e2e-link' });
    await linkRow.waitFor({ timeout: WAIT });
    await dash.locator('[data-feed-ready="true"]').waitFor({ timeout: WAIT });
    await row.getByRole('button', { name: 'Remove' }).click();
    await row.waitFor({ state: 'detached', timeout: WAIT });
    assertEq((await daemon.api('/api/relays')).json.relays.length, 0, 'removed');
    await linkRow.waitFor({ state: 'detached', timeout: WAIT });
    assertEq(await dash.locator('[data-testid="connection"]', { hasText: 'local' }).count(), 1, 'the local ingress stays listed');
    assert(!(await daemon.api('/api/health')).json.connections.some((c) => c.name === 'e2e-link'), '/api/health no longer lists it');
    await dash.close();

    const ret = page.getByRole('form', { name: 'Retention' });
    await ret.getByLabel(/at most \(events/).fill('1000000');
    await ret.getByRole('button', { name: 'Save retention' }).click();
    await ret.getByRole('status').waitFor({ timeout: WAIT });
    assertEq((await daemon.api('/api/settings/retention')).json.max_events, 1000000, 'retention saved');
    await ret.getByRole('button', { name: "Use kite.json's" }).click();
    await page.waitForFunction(() => !document.body.innerText.includes("Use kite.json's"), null, { timeout: WAIT });
    assertEq((await daemon.api('/api/settings/retention')).json.origin, 'manifest', 'retention reset');
  }],

  ['each page shows what its API answers, or says the API is missing: never a blank page, never stale data', async () => {
    // Real endpoints: the page shows exactly the API's data. Run after the outbox tests, so deliveries exist.
    const noAlert = async (p, path) => assertEq(await p.locator('main [role="alert"]').count(), 0, `${path} shows no error`);
    const deliveries = (await daemon.api('/api/deliveries?limit=100')).json.deliveries;
    assert(deliveries.length > 0, 'the outbox tests left deliveries to show');
    await page.goto(`${daemon.base}/deliveries`);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="delivery-row"]').length === n, deliveries.length, { timeout: WAIT })
      .catch(async () => assertEq(await page.getByTestId('delivery-row').count(), deliveries.length, '/deliveries lists every delivery'));
    const firstTarget = await page.locator('[data-testid="delivery-row"] .tgt').first().innerText();
    assert(firstTarget.includes(deliveries[0].target), `newest delivery first (${firstTarget})`);
    await noAlert(page, '/deliveries');

    const secrets = await daemon.api('/api/secrets');
    await page.goto(`${daemon.base}/secrets`);
    if (secrets.status === 503) {
      await page.getByText('No keychain available.').waitFor({ timeout: WAIT });
      assert((await page.locator('main').innerText()).includes(secrets.json.message), '/secrets shows the API message');
      assertEq(await page.locator('main table').count(), 0, 'no secrets table without a keychain');
    } else {
      assertEq(secrets.status, 200, 'GET /api/secrets');
      await page.locator('main table').waitFor({ timeout: WAIT });
      const names = await page.$$eval('main table tbody tr td:first-child strong', (els) => els.map((e) => e.textContent));
      assertEq(names, secrets.json.secrets.map((x) => x.name), '/secrets lists the API secrets');
      await noAlert(page, '/secrets');
    }

    const notif = (await daemon.api('/api/settings/notifications')).json;
    await page.goto(`${daemon.base}/settings`);
    await page.getByLabel('Notify at or above').waitFor({ timeout: WAIT });
    assertEq(await page.getByLabel('Notify at or above').inputValue(), notif.threshold, '/settings shows the saved threshold');
    await noAlert(page, '/settings');

    // The same pages against a daemon without those endpoints (404 no_route, as an older build answers):
    // an explanation, and none of the data.
    const missing = (api) => page.route((u) => new URL(u).pathname === api, (r) =>
      r.fulfill({ status: 404, contentType: 'application/json', body: JSON.stringify({ code: 'no_route', message: 'no such API endpoint' }) }));
    for (const [path, api, absent] of [
      ['/deliveries', '/api/deliveries', 'main table'],
      ['/secrets', '/api/secrets', 'main table'],
      ['/settings', '/api/settings/notifications', 'select'],
    ]) {
      await missing(api);
      try {
        await page.goto(daemon.base + path);
        const box = page.locator('[data-code="no_route"]').first();
        await box.waitFor({ timeout: WAIT });
        assert((await box.innerText()).includes('Not available in this daemon'), `${path} explains the missing endpoint`);
        assert((await page.locator('h1').first().innerText()).length > 0, `${path} still has its heading`);
        const shown = path === '/settings' ? page.getByLabel('Notify at or above') : page.locator(absent);
        assertEq(await shown.count(), 0, `${path} shows no data (nor an empty list) for the missing endpoint`);
        assert(!(await page.locator('main').innerText()).match(/No deliveries match|No secrets yet/), `${path} does not claim an empty list`);
      } finally {
        await page.unroute((u) => new URL(u).pathname === api);
      }
    }
  }],

  ['settings: an HTTP sink is added, used from the event page, and removed after a confirmation', async () => {
    const rx = await startReceiver();
    rx.status = 200;
    try {
      await page.goto(`${daemon.base}/settings`);
      const form = page.getByRole('form', { name: 'Add a sink' });
      await form.waitFor({ timeout: WAIT });
      assert((await form.innerText()).includes('run programs'), 'the form says why exec sinks cannot be added here');
      await form.getByLabel('Name', { exact: true }).fill('e2e-sink');
      await form.getByLabel('URL', { exact: true }).fill('ftp://127.0.0.1/x');
      await form.getByRole('button', { name: 'Add sink' }).click();
      await form.locator('[data-code="invalid_sink"]').waitFor({ timeout: WAIT });
      assert((await form.locator('[data-code="invalid_sink"]').innerText()).includes('url:'), 'the error names the URL field');
      await form.getByLabel('URL', { exact: true }).fill(rx.url);
      await form.getByLabel(/^Timeout/).fill('5000');
      await form.getByRole('button', { name: 'Add sink' }).click();
      const row = page.locator('[data-sink="e2e-sink"]');
      await row.waitFor({ timeout: WAIT });
      const rowText = await row.innerText();
      assert(rowText.includes('added here') && rowText.includes(rx.url) && rowText.includes('5000 ms'), `the sink is listed as added here (${rowText})`);
      const listed = (await daemon.api('/api/sinks')).json.sinks.find((k) => k.name === 'e2e-sink');
      assertEq([listed?.origin, listed?.target, listed?.timeout_ms], ['api', rx.url, 5000], 'the API lists the added sink');
      // Same name again: the daemon's 409 is shown.
      await form.getByLabel('Name', { exact: true }).fill('e2e-sink');
      await form.getByLabel('URL', { exact: true }).fill(rx.url);
      await form.getByRole('button', { name: 'Add sink' }).click();
      await form.locator('[data-code="sink_exists"]').waitFor({ timeout: WAIT });

      // Forward an event to it from the event page.
      const id = sent.succeeded;
      const ev = (await daemon.api(`/api/events/${id}`)).json;
      await page.goto(`${daemon.base}/events/${id}`);
      await page.getByRole('button', { name: 'Forward / replay…' }).click();
      const dialog = page.locator('dialog');
      await dialog.getByLabel('Configured sink').check();
      const option = dialog.locator('option[value="e2e-sink"]');
      assert((await option.innerText()).includes('added in Settings'), 'the forward dialog lists the new sink');
      await dialog.locator('select:has(option[value="e2e-sink"])').selectOption('e2e-sink');
      await page.getByTestId('forward-go').click();
      const result = dialog.getByTestId('delivery-result');
      await result.waitFor({ timeout: WAIT });
      assert((await result.innerText()).includes('e2e-sink'), 'the result names the sink');
      assertEq(await result.getByTestId('delivery-code').innerText(), '200', 'the sink answered');
      assertEq(rx.requests.length, 1, 'the event reached the sink');
      assertEq(rx.requests[0].headers['x-kite-event-id'], ev.event_id, 'the forwarded event');
      assertEq(JSON.parse(rx.requests[0].body), JSON.parse(ev.payload), 'its original payload');
      const d = (await daemon.api(`/api/events/${id}/deliveries`)).json.deliveries.find((x) => x.sink === 'e2e-sink');
      assertEq(d?.status, 'delivered', 'the outbox records the delivery to the sink');
      await page.getByRole('button', { name: 'Close' }).click();

      // Remove: asks first, then it is gone.
      await page.goto(`${daemon.base}/settings`);
      await row.waitFor({ timeout: WAIT });
      await row.getByRole('button', { name: 'Remove' }).click();
      await row.getByRole('alert').waitFor({ timeout: WAIT });
      assert((await daemon.api('/api/sinks')).json.sinks.some((k) => k.name === 'e2e-sink'), 'nothing is removed before the confirmation');
      await row.getByRole('button', { name: 'Yes, remove' }).click();
      await row.waitFor({ state: 'detached', timeout: WAIT });
      assert(!(await daemon.api('/api/sinks')).json.sinks.some((k) => k.name === 'e2e-sink'), 'removed from the daemon');
    } finally {
      await rx.close();
    }
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
