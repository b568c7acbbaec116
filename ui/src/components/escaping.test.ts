import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, fireEvent } from '@testing-library/svelte';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import JsonTree from './JsonTree.svelte';
import DeliveryResult from './DeliveryResult.svelte';

const XSS = {
  title: '<img src=x onerror="window.__pwned=1">',
  body: '<script>window.__pwned=2</script>',
  '<b>key</b>': ['<svg onload=alert(1)>'],
};

afterEach(cleanup);

describe('payload text is never HTML', () => {
  it('the JSON tree shows markup as text', async () => {
    const { container } = render(JsonTree, { props: { value: XSS } });
    await fireEvent.click(container.querySelector('button.tog[aria-expanded="false"]') ?? container);
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('script')).toBeNull();
    expect(container.querySelector('svg')).toBeNull();
    expect(container.querySelector('b')).toBeNull();
    expect(container.textContent).toContain('<img src=x onerror=\\"window.__pwned=1\\">');
    expect(container.textContent).toContain('<script>window.__pwned=2</script>');
    expect(container.textContent).toContain('<b>key</b>');
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
  });

  it('a response body from a forward target is text', () => {
    const { container } = render(DeliveryResult, {
      props: {
        d: {
          id: 1, event_id: 2, ce_id: 'x', sink: '', target: 'http://127.0.0.1:1/<i>t</i>', status: 'delivered', attempts: 1,
          created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
          last: { n: 1, started_at: '2026-01-01T00:00:00Z', status_code: 200, latency_ms: 3, ok: true, response_body: '<img src=x onerror=alert(1)>' },
        },
      },
    });
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('i')).toBeNull();
    expect(container.querySelector('[data-testid="delivery-body"]')?.textContent).toBe('<img src=x onerror=alert(1)>');
  });

  it('the JSON tree search highlights matches and counts them', async () => {
    const { container, getByLabelText } = render(JsonTree, { props: { value: { a: { b: 'needle' }, c: 'hay' } } });
    const input = getByLabelText('Find in payload') as HTMLInputElement;
    await fireEvent.input(input, { target: { value: 'NEEDLE' } });
    expect(container.querySelector('[data-testid="json-matches"]')?.textContent).toBe('1 match');
    expect(container.querySelector('.hit')?.getAttribute('data-path')).toBe('a.b');
  });
});

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

describe('source rules', () => {
  const src = join(__dirname, '..');
  const all = files(src).filter((f) => /\.(svelte|ts)$/.test(f) && !f.endsWith('.test.ts'));

  it('no {@html} anywhere', () => {
    const offenders = all.filter((f) => readFileSync(f, 'utf8').includes('{@html'));
    expect(offenders).toEqual([]);
  });

  it('only lib/api talks to the daemon', () => {
    const offenders = all.filter((f) => !f.includes(join('lib', 'api')) && /\bfetch\(|new EventSource|XMLHttpRequest/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });
});
