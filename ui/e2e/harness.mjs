// Shared parts of the end-to-end runs: a real `kitedesk serve` on a free
// port with a temp data dir, the real CLI to send webhooks, and Chromium.

import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../..');

export function kitedeskBin() {
  if (process.env.KITEDESK_BIN) return process.env.KITEDESK_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, 'target');
  const bin = join(target, 'debug', 'kitedesk');
  if (!existsSync(bin)) throw new Error(`${bin} not found: build it with cargo build, or set KITEDESK_BIN`);
  return bin;
}

/** Start `kitedesk serve`; resolves once it printed its UI line (its readiness signal). */
export async function startDaemon({ dataDir, env = {}, manifest, timeoutMs = 30_000 } = {}) {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'kitedesk-e2e-'));
  if (manifest) {
    const path = join(dir, 'kite.json');
    writeFileSync(path, JSON.stringify(manifest, null, 2));
    env = { ...env, KITEDESK_MANIFEST: path };
  }
  const bin = kitedeskBin();
  const launch = async (listen) => {
    const child = spawn(bin, ['serve', '--data-dir', dir, '--listen', listen], {
      env: cleanEnv({ KITEDESK_LOG: 'warn', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Never leave a daemon behind, even if the runner dies (e.g. its output pipe closes).
    const orphanGuard = () => child.exitCode === null && child.kill('SIGTERM');
    process.once('exit', orphanGuard);
    child.once('exit', () => process.off('exit', orphanGuard));
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const ready = new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`kitedesk serve did not start in ${timeoutMs} ms\n${out}\n${err}`)), timeoutMs);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /UI:\s+(http:\/\/[^/\s]+)\/\?token=(\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          res({ base: m[1], token: m[2] });
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        rej(new Error(`kitedesk serve exited with ${code}\n${out}\n${err}`));
      });
    });
    const { base, token } = await ready;
    const index = await (await fetch(base + '/')).text();
    if (!index.includes('/assets/')) {
      child.kill('SIGTERM');
      throw new Error(`${bin} does not serve the built UI (it was compiled before ui/dist existed, or it is another build): run make ui, then cargo build`);
    }
    return { child, base, token };
  };
  const stopChild = async (child) => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  };
  let { child, base, token } = await launch('127.0.0.1:0');
  return {
    base,
    token,
    dir,
    env,
    get child() {
      return child;
    },
    /** Stop and start again on the same address and data dir (the UI page stays open). */
    async restart() {
      await stopChild(child);
      ({ child } = await launch(base.replace('http://', '')));
    },
    async api(path, init = {}) {
      const r = await fetch(base + path, { ...init, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) } });
      const text = await r.text();
      return { status: r.status, json: text ? JSON.parse(text) : null };
    },
    async stop() {
      await stopChild(child);
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

const run = promisify(execFile);

/** The environment without any KITEDESK_* settings of the person running the tests. */
export function cleanEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('KITEDESK_')) delete env[k];
  return { ...env, ...extra };
}

/** `kitedesk send-test SOURCE [EVENT]` through the real CLI; returns the new local id. */
export async function sendTest(daemon, source, event) {
  const args = ['send-test', source, ...(event ? [event] : []), '--data-dir', daemon.dir];
  const { stdout } = await run(kitedeskBin(), args, { env: cleanEnv(daemon.env) });
  const m = /#(\d+)/.exec(stdout);
  if (!m) throw new Error(`send-test printed no id: ${stdout}`);
  return Number(m[1]);
}

/** POST a raw webhook to the ingress (what a sender does). */
export async function postHook(daemon, source, body, headers = {}) {
  const r = await fetch(`${daemon.base}/hooks/${source}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const j = await r.json();
  if (!r.ok) throw new Error(`ingress answered ${r.status}: ${JSON.stringify(j)}`);
  return j;
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A tiny test runner: named async tests, run in order, a summary, exit code. */
export async function runTests(tests, { only } = {}) {
  let failed = 0;
  for (const [name, fn] of tests) {
    if (only && !name.includes(only)) continue;
    const t0 = performance.now();
    try {
      await fn();
      console.log(`ok   ${name} (${Math.round(performance.now() - t0)} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}\n     ${String(e?.stack ?? e).split('\n').slice(0, 6).join('\n     ')}`);
    }
  }
  console.log(failed ? `${failed} e2e test(s) failed` : 'all e2e tests passed');
  return failed;
}

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}
export function assertEq(a, b, msg) {
  const ja = JSON.stringify(a);
  const jb = JSON.stringify(b);
  if (ja !== jb) throw new Error(`${msg}: got ${ja}, want ${jb}`);
}

/**
 * A local webhook receiver on 127.0.0.1:0: records every request and answers
 * `status` with a body naming the event it got.
 */
export async function startReceiver() {
  const rx = { status: 201, requests: [], url: '' };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      rx.requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(rx.status, { 'Content-Type': 'text/plain' });
      res.end(`receiver got ${req.headers['x-kite-event-id'] ?? 'no id'} (${rx.status})`);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  rx.url = `http://127.0.0.1:${server.address().port}/webhook`;
  rx.close = () => new Promise((r) => server.close(r));
  return rx;
}

/** Poll `fn` until it returns a truthy value, or fail after `ms`. */
export async function until(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
