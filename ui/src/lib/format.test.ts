import { describe, expect, it } from 'vitest';
import type { Grant } from '../bindings';
import { isDark } from './theme';
import { ago, grantLifetime, grantStatus, hostOf, plural, programText, until } from './format';

const grant = (extra: Partial<Grant> = {}): Grant => ({
  id: 'gr_1',
  client_id: 'c1',
  server: 'demo',
  tools: ['read_note'],
  ask_tools: [],
  scope: 'tool:read_note',
  duration: 'forever',
  created_at: 0,
  expires_at: null,
  revoked_at: null,
  decided_by: 'me (desktop)',
  may_ask_more: false,
  ...extra,
});

describe('format', () => {
  it('says how long ago and how long until', () => {
    expect(ago(null, 0)).toBe('never');
    expect(ago(0, 10_000)).toBe('just now');
    expect(ago(0, 5 * 60_000)).toBe('5 min ago');
    expect(ago(0, 3 * 3_600_000)).toBe('3 h ago');
    expect(ago(0, 26 * 3_600_000)).toBe('yesterday');
    expect(until(3_600_000, 0)).toBe('in 1 h');
    expect(until(30_000, 0)).toBe('in under a minute');
    expect(until(3 * 86_400_000, 0)).toBe('in 3 days');
  });

  it('describes a grant by its state', () => {
    expect(grantStatus(grant(), 0)).toBe('active');
    expect(grantStatus(grant({ revoked_at: 5 }), 10)).toBe('revoked');
    expect(grantStatus(grant({ duration: 'timed', expires_at: 5 }), 10)).toBe('expired');
    expect(grantLifetime(grant(), 0)).toBe('until revoked');
    expect(grantLifetime(grant({ duration: 'timed', expires_at: 3_600_000 }), 0)).toBe('ends in 1 h');
    expect(grantLifetime(grant({ duration: 'once', expires_at: 3_600_000 }), 0)).toBe('this one session');
  });

  it('hosts and plurals', () => {
    expect(hostOf('http://127.0.0.1:3000/callback')).toBe('127.0.0.1:3000');
    expect(hostOf('not a url')).toBe('not a url');
    expect(plural(1, 'event')).toBe('1 event');
    expect(plural(100000, 'event')).toBe('100,000 events');
  });

  it('names the program behind an agent, inert', () => {
    expect(programText(null)).toMatch(/^unknown/);
    const p = { pid: 42, exe: '/usr/bin/node', cmdline: 'node a.js', started_by: [{ pid: 7, name: '/bin/bash' }] };
    expect(programText(p)).toBe('/usr/bin/node, pid 42, started by /bin/bash (pid 7)');
    expect(programText({ ...p, exe: null, started_by: [] })).toBe('an executable it may not read, pid 42');
    expect(programText({ ...p, exe: '/tmp/\u202eevil' })).toContain('\\u{202E}');
  });

  it('resolves the theme setting', () => {
    expect(isDark('dark', false)).toBe(true);
    expect(isDark('light', true)).toBe(false);
    expect(isDark('system', true)).toBe(true);
    expect(isDark('system', false)).toBe(false);
  });
});
