// Forwarding and dead letters through the UI (the outbox API).
import { assert, assertEq, startReceiver, until } from './harness.mjs';

export function outboxTests({ daemon, page, sent, waitRows, WAIT }) {
  let rx;
  return [
    ['forwarding one event to a local server shows its status, latency and body', async () => {
      rx = await startReceiver();
      const id = sent.failed[0];
      const ev = (await daemon.api(`/api/events/${id}`)).json;
      await page.goto(`${daemon.base}/events/${id}`);
      await page.getByRole('button', { name: 'Forward / replay…' }).click();
      await page.getByTestId('forward-url').fill(rx.url);
      await page.getByTestId('forward-go').click();
      await page.getByTestId('delivery-result').waitFor({ timeout: WAIT });
      assertEq(await page.getByTestId('delivery-code').innerText(), '201', 'the target status is shown');
      assertEq(await page.getByTestId('delivery-body').innerText(), `receiver got ${ev.event_id} (201)`, 'the target body is shown');
      assertEq(rx.requests.length, 1, 'one request reached the receiver');
      assertEq(JSON.parse(rx.requests[0].body), JSON.parse(ev.payload), 'the original payload was forwarded');
      await page.getByRole('button', { name: 'Close' }).click();
      await page.locator('main [data-testid="delivery-result"]').first().waitFor({ timeout: WAIT });
    }],

    ['replaying every event matching the filter asks with a count first', async () => {
      rx.requests.length = 0;
      await page.goto(`${daemon.base}/?source=stripe`);
      await waitRows([...sent.failed, sent.succeeded], page, 'stripe events');
      await page.getByRole('button', { name: 'Forward…' }).click();
      await page.getByTestId('forward-url').fill(rx.url);
      await page.getByTestId('forward-go').click();
      await page.getByTestId('forward-count').waitFor({ timeout: WAIT });
      assert((await page.getByTestId('forward-count').innerText()).includes('sends 3 events'), 'the count of matching events is shown');
      assertEq(rx.requests.length, 0, 'nothing is sent before the confirmation');
      await page.getByTestId('forward-go').click();
      await page.getByTestId('forward-summary').waitFor({ timeout: WAIT });
      assertEq(await page.getByTestId('delivery-result').count(), 3, 'one result per event');
      assertEq(rx.requests.length, 3, 'three requests reached the receiver');
      await page.getByRole('button', { name: 'Close' }).click();
    }],

    ['a dead letter can be retried from the deliveries page', async () => {
      rx.status = 500;
      const r = await daemon.api('/api/forward', { method: 'POST', body: JSON.stringify({ event_ids: [sent.sla], target: { url: rx.url } }) });
      assertEq(r.status, 200, `forward answered ${JSON.stringify(r.json)}`);
      const did = r.json.deliveries[0].id;
      await until(async () => (await daemon.api(`/api/deliveries/${did}`)).json.status === 'dead', WAIT, 'the delivery to become a dead letter');
      rx.status = 200;
      await page.goto(`${daemon.base}/deliveries?status=dead`);
      const row = page.locator('[data-testid="delivery-row"]', { hasText: `#${sent.sla}` });
      await row.waitFor({ timeout: WAIT });
      assertEq(await page.locator('[data-testid="delivery-row"]').count(), 1, 'only the dead letter is listed');
      await row.getByTestId('retry-one').click();
      await until(async () => (await daemon.api(`/api/deliveries/${did}`)).json.status === 'delivered', WAIT, 'the retried delivery to succeed');
      await page.getByLabel('Status').selectOption('delivered');
      await page.locator(`[data-testid="delivery-row"][data-status="delivered"]`, { hasText: `#${sent.sla}` }).waitFor({ timeout: WAIT });
      assert(rx.requests.at(-1).headers['x-kite-event-id'] !== undefined, 'the retry reached the receiver');
      await rx.close();
    }],
  ];
}
