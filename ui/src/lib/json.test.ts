import { describe, expect, it } from 'vitest';
import { curlCommand, maskHeader, pathString, searchTree, shellQuote } from './json';

describe('JSON tree helpers', () => {
  const doc = { repository: { full_name: 'acme/api' }, commits: [{ id: 'abc', message: 'Fix deploy' }, { id: 'def', message: 'docs' }], 'weird key': 1 };

  it('paths', () => {
    expect(pathString([])).toBe('');
    expect(pathString(['commits', 0, 'id'])).toBe('commits[0].id');
    expect(pathString(['weird key'])).toBe('["weird key"]');
  });

  it('search finds keys and values and opens their ancestors', () => {
    const { matches, open } = searchTree(doc, 'DEPLOY');
    expect([...matches]).toEqual(['commits[0].message']);
    expect([...open].sort()).toEqual(['', 'commits', 'commits[0]']);
    const byKey = searchTree(doc, 'full_name');
    expect(byKey.matches.has('repository.full_name')).toBe(true);
    expect(searchTree(doc, '  ').matches.size).toBe(0);
  });
});

describe('masking and curl', () => {
  it('masks signature and credential headers only', () => {
    expect(maskHeader('X-Hub-Signature-256', 'sha256=0123456789abcdef')).toBe('sha2••••••••');
    expect(maskHeader('Stripe-Signature', 't=1')).toBe('••••••••');
    expect(maskHeader('X-GitHub-Event', 'push')).toBe('push');
  });

  it('shell-quotes everything (no command substitution survives)', () => {
    expect(shellQuote(`it's $(rm -rf ~)`)).toBe(`'it'\\''s $(rm -rf ~)'`);
    const c = curlCommand('http://127.0.0.1:7710/hooks/github', [['Content-Type', 'application/json'], ['Host', 'x'], ['X-Hub-Signature-256', 'sha256=secretsecret']], `{"a":"'; echo pwned"}`);
    expect(c).toContain(`-H 'Content-Type: application/json'`);
    expect(c).not.toContain('Host:');
    expect(c).not.toContain('secretsecret');
    expect(c).toContain(`--data-binary '{"a":"'\\''; echo pwned"}'`);
  });
});
