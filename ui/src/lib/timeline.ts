// The timeline's logic: the filter bar's state as a query, live events merged
// into the loaded rows, the window of rows to render, and how cells read.

import type { AuditEvent, AuditFilter, Outcome } from '../bindings';
import { plural } from './format';

export const ROW_HEIGHT = 30;
export const PAGE_SIZE = 500;

export type TimeRange = 'all' | '15m' | '1h' | '24h' | '7d';

export const TIME_RANGES: { value: TimeRange; label: string }[] = [
  { value: 'all', label: 'Any time' },
  { value: '15m', label: 'Last 15 minutes' },
  { value: '1h', label: 'Last hour' },
  { value: '24h', label: 'Last 24 hours' },
  { value: '7d', label: 'Last 7 days' },
];

const RANGE_MS: Record<Exclude<TimeRange, 'all'>, number> = {
  '15m': 15 * 60_000,
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
};

export interface FilterBar {
  clientId: string;
  server: string;
  outcome: Outcome | '';
  range: TimeRange;
  text: string;
}

export const EMPTY_FILTER: FilterBar = { clientId: '', server: '', outcome: '', range: 'all', text: '' };

/** The filter bar as the query the Rust side takes (`now` fixes the time range). */
export function toQuery(f: FilterBar, now: number): AuditFilter {
  const text = f.text.trim();
  return {
    client_id: f.clientId || null,
    server: f.server || null,
    outcome: f.outcome || null,
    since: f.range === 'all' ? null : now - RANGE_MS[f.range],
    until: null,
    text: text || null,
  };
}

export function isFiltered(f: FilterBar): boolean {
  return Boolean(f.clientId || f.server || f.outcome || f.range !== 'all' || f.text.trim());
}

/** The same rules as the SQL query (the core's `audit::Filter::matches`), for live events. */
export function matches(e: AuditEvent, q: AuditFilter): boolean {
  if (q.client_id !== null && e.client_id !== q.client_id) return false;
  if (q.server !== null && e.server !== q.server) return false;
  if (q.outcome !== null && e.outcome !== q.outcome) return false;
  if (q.since !== null && e.at < q.since) return false;
  if (q.until !== null && e.at >= q.until) return false;
  const text = q.text?.trim();
  if (text) {
    const fields = [e.agent, e.server, e.tool, e.kind, e.actor, JSON.stringify(e.detail)];
    const wanted = asciiLower(text);
    if (!fields.some((v) => v != null && asciiLower(v).includes(wanted))) return false;
  }
  return true;
}

/** As SQLite's LIKE compares text: ASCII letters in any case, other letters as they are. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Adds a live event at the top when it matches and is newer than what is
 * loaded (events can arrive while a page loads; no duplicates).
 */
export function mergeLive(rows: AuditEvent[], e: AuditEvent, q: AuditFilter): AuditEvent[] {
  if (!matches(e, q)) return rows;
  if (rows.length > 0 && e.id <= rows[0].id) return rows;
  return [e, ...rows];
}

/** Appends an older page, skipping any ids already loaded. */
export function appendPage(rows: AuditEvent[], page: AuditEvent[]): AuditEvent[] {
  const last = rows.length ? rows[rows.length - 1].id : Infinity;
  return rows.concat(page.filter((e) => e.id < last));
}

/** The rows to render for a scroll position, with some overscan above and below. */
export function visibleRange(
  scrollTop: number,
  viewport: number,
  count: number,
  rowHeight = ROW_HEIGHT,
  overscan = 10,
): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, first + Math.ceil(viewport / rowHeight) + overscan);
  return { start, end: Math.max(start, end) };
}

/** Whether to fetch the next (older) page: the rendered window is near the end of what is loaded. */
export function needsMore(end: number, loaded: number, exhausted: boolean): boolean {
  return !exhausted && end >= loaded - PAGE_SIZE / 5;
}

const KIND_LABELS: Record<string, string> = {
  client_registered: 'registered',
  consent_requested: 'asked for access',
  consent_approved: 'access approved',
  consent_denied: 'access denied',
  consent_expired: 'request expired',
  token_issued: 'token issued',
  token_refreshed: 'token refreshed',
  token_revoked: 'token revoked',
  code_replayed: 'code replayed',
  refresh_reused: 'refresh token reused',
  grant_revoked: 'grant revoked',
  agent_revoked: 'agent revoked',
  tool_call: 'tool call',
  call_started: 'call started',
  task_result: 'task result',
  mcp_request: 'asked by the server',
};

/**
 * What the outcome column says. A call's start is listed only while it has
 * no outcome: running, or Gatehouse stopped before its end was recorded.
 */
export function outcomeLabel(e: AuditEvent): string {
  return e.kind === 'call_started' ? 'no outcome yet' : e.outcome;
}

/** The filter bar's count: "1,234 events", or "10,000+ events" past the count's cap. */
export function eventCount(total: number | null, more: boolean): string {
  if (total === null) return '';
  if (!more) return plural(total, 'event');
  return `${total.toLocaleString('en-US')}+ events`;
}

/** The item under which a review of a server's instructions names them (`pinning::INSTRUCTIONS`). */
const INSTRUCTIONS = '@instructions';

/** What the "tool" column shows: the tool for calls, else what happened. */
export function whatLabel(e: AuditEvent): string {
  if (e.tool === INSTRUCTIONS && (e.kind === 'tool_changed' || e.kind === 'tool_reviewed')) {
    return "the server's instructions";
  }
  if (e.tool) return e.tool;
  return KIND_LABELS[e.kind] ?? e.kind.replace(/_/g, ' ');
}

export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? kind.replace(/_/g, ' ');
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** Time of day for today's events, date and time for older ones (local time). */
export function formatTime(at: number, now: number): string {
  const d = new Date(at);
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  if (new Date(now).toDateString() === d.toDateString()) return time;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time.slice(0, 5)}`;
}

export const OUTCOMES: { value: Outcome; label: string }[] = [
  { value: 'allowed', label: 'Allowed' },
  { value: 'denied', label: 'Denied' },
  { value: 'error', label: 'Error' },
  { value: 'revoked', label: 'Revoked' },
];
