// Small text helpers shared by the views.

import type { Grant, Program } from '../bindings';
import { inert } from './inert';

/** "just now", "5 min ago", "3 h ago", "2 days ago". */
export function ago(at: number | null, now: number): string {
  if (at === null) return 'never';
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.round(h / 24);
  return d === 1 ? 'yesterday' : `${d} days ago`;
}

/** "in 5 min", "in 3 h", "in 2 days". */
export function until(at: number, now: number): string {
  const s = Math.max(0, Math.round((at - now) / 1000));
  if (s < 60) return 'in under a minute';
  const m = Math.round(s / 60);
  if (m < 60) return `in ${m} min`;
  const h = Math.round(m / 60);
  if (h < 48) return `in ${h} h`;
  return `in ${Math.round(h / 24)} days`;
}

export type GrantStatus = 'active' | 'revoked' | 'expired';

export function grantStatus(g: Grant, now: number): GrantStatus {
  if (g.revoked_at !== null) return 'revoked';
  if (g.expires_at !== null && g.expires_at <= now) return 'expired';
  return 'active';
}

/** How long the grant lasts, in words. */
export function grantLifetime(g: Grant, now: number): string {
  switch (grantStatus(g, now)) {
    case 'revoked':
      return 'revoked';
    case 'expired':
      return 'expired';
    default:
      if (g.duration === 'forever') return 'until revoked';
      if (g.duration === 'once') return 'this one session';
      return g.expires_at === null ? 'until revoked' : `ends ${until(g.expires_at, now)}`;
  }
}

/** The host of a redirect URI, for the agents view. */
export function hostOf(uri: string): string {
  try {
    return new URL(uri).host;
  } catch {
    return uri;
  }
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** The URL to give an AI client (the first fronted server), for empty states. */
export function clientUrl(info: { url: string; servers: { url: string }[] } | null): string {
  if (!info) return 'http://127.0.0.1:…/mcp/demo';
  return info.servers[0]?.url ?? `${info.url}/mcp/demo`;
}

/**
 * The program behind an agent, as the kernel saw it: "/usr/bin/node, pid 4242,
 * started by /usr/bin/bash (pid 4100)". Every part is outside text, made inert.
 */
export function programText(p: Program | null): string {
  if (!p) return 'unknown (not traced to a process on this computer)';
  const exe = p.exe === null ? 'an executable it may not read' : inert(p.exe);
  const parent = p.started_by[0];
  const by = parent ? `, started by ${inert(parent.name)} (pid ${parent.pid})` : '';
  return `${exe}, pid ${p.pid}${by}`;
}
