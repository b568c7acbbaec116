// The Settings page's "add a sink" form, turned into a `POST /api/sinks`
// body (or the first problem, naming the field as the daemon does).
import type { NewSink, ResignScheme } from './api';

export interface SinkForm {
  name: string;
  url: string;
  /** Milliseconds; empty: the default (10 s). A number input binds a number (or null). */
  timeout: string | number | null;
  envelope: boolean;
  resign: boolean;
  scheme: ResignScheme;
  /** A new secret value, stored in the keychain; or empty to use `secretName`. */
  secret: string;
  /** An existing keychain secret; empty: `sink/<name>`. */
  secretName: string;
}

export const emptySinkForm = (): SinkForm => ({
  name: '',
  url: '',
  timeout: '',
  envelope: false,
  resign: false,
  scheme: 'github',
  secret: '',
  secretName: '',
});

const SLUG = /^[a-z0-9][a-z0-9-]{0,63}$/;

export function sinkRequest(f: SinkForm): { ok: true; body: NewSink } | { ok: false; error: string } {
  const name = f.name.trim();
  if (!SLUG.test(name)) return { ok: false, error: 'name: lowercase letters, digits and dashes (e.g. ci-hook)' };
  if (name === 'forward') return { ok: false, error: 'name: "forward" is reserved' };
  const url = f.url.trim();
  if (!/^https?:\/\/[^\s/@]+(\/\S*)?$/i.test(url)) return { ok: false, error: 'url: an http:// or https:// URL, without credentials' };
  const body: NewSink = { name, url };
  const t = String(f.timeout ?? '').trim();
  if (t) {
    const ms = Number(t);
    if (!Number.isInteger(ms) || ms < 1 || ms > 300_000) return { ok: false, error: 'timeout_ms: whole milliseconds, 1 to 300000' };
    body.timeout_ms = ms;
  }
  if (f.envelope) body.envelope = true;
  if (f.resign) {
    const resign: NonNullable<NewSink['resign']> = { scheme: f.scheme };
    if (f.secret) resign.secret = f.secret;
    if (f.secretName.trim()) resign.secret_name = f.secretName.trim();
    body.resign = resign;
  }
  return { ok: true, body };
}
