// Helpers for the payload view: parsing, searching a JSON tree, masking headers, curl.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function parseOrNull(text: string): Json | undefined {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

export function isContainer(v: Json): v is Json[] | { [k: string]: Json } {
  return v !== null && typeof v === 'object';
}

/** Path segments joined for display: `data.commits[0].id`. */
export function pathString(path: (string | number)[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(p)) s += s ? `.${p}` : p;
    else s += `[${JSON.stringify(p)}]`;
  }
  return s;
}

/**
 * Paths (as strings) of every node whose key or scalar value contains
 * `needle` (case-insensitive), plus all their ancestors, so the tree can
 * open exactly what leads to a match.
 */
export function searchTree(root: Json, needle: string): { matches: Set<string>; open: Set<string> } {
  const matches = new Set<string>();
  const open = new Set<string>();
  const n = needle.trim().toLowerCase();
  if (!n) return { matches, open };
  const walk = (v: Json, path: (string | number)[]) => {
    const key = path.length ? String(path[path.length - 1]) : '';
    const hit =
      key.toLowerCase().includes(n) || (!isContainer(v) && String(v).toLowerCase().includes(n));
    if (hit) {
      matches.add(pathString(path));
      for (let i = 0; i < path.length; i++) open.add(pathString(path.slice(0, i)));
    }
    if (Array.isArray(v)) v.forEach((c, i) => walk(c, [...path, i]));
    else if (isContainer(v)) for (const [k, c] of Object.entries(v)) walk(c, [...path, k]);
  };
  walk(root, []);
  return { matches, open };
}

const SECRET_HEADER = /(signature|secret|token|authorization|cookie|api[-_]?key|password)/i;

/** Header values that authenticate a request are shown masked. */
export function maskHeader(name: string, value: string): string {
  if (!SECRET_HEADER.test(name)) return value;
  if (value.length <= 8) return '••••••••';
  return `${value.slice(0, 4)}••••••••`;
}

export function headerPairs(h: [string, string][] | Record<string, string> | undefined): [string, string][] {
  if (!h) return [];
  return Array.isArray(h) ? h : Object.entries(h);
}

/** POSIX shell single-quoting: nothing inside is interpreted. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A curl command that replays the webhook as received (original headers,
 * secrets masked, so it must be re-signed to pass a signature check).
 */
export function curlCommand(url: string, headers: [string, string][], body: string): string {
  const skip = new Set(['host', 'content-length', 'connection', 'accept-encoding', 'transfer-encoding']);
  const lines = [`curl -X POST ${shellQuote(url)}`];
  for (const [k, v] of headers) {
    if (skip.has(k.toLowerCase())) continue;
    lines.push(`  -H ${shellQuote(`${k}: ${maskHeader(k, v)}`)}`);
  }
  lines.push(`  --data-binary ${shellQuote(body)}`);
  return lines.join(' \\\n');
}
