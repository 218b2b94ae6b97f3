import { describe, expect, it } from 'vitest';
import type { AuditEvent, EventKind } from '../bindings';
import {
  EMPTY_FILTER,
  PAGE_SIZE,
  appendPage,
  eventCount,
  formatDuration,
  formatTime,
  isFiltered,
  matches,
  mergeLive,
  needsMore,
  outcomeLabel,
  toQuery,
  visibleRange,
  whatLabel,
} from './timeline';

const ev = (id: number, extra: Partial<AuditEvent> = {}): AuditEvent => ({
  id,
  at: 1_000 + id,
  kind: 'tool_call',
  outcome: 'allowed',
  client_id: 'c1',
  agent: 'Claude Code',
  server: 'demo',
  tool: 'read_note',
  grant_id: 'gr_1',
  actor: null,
  duration_ms: 3,
  detail: { arguments: { title: 'Shopping_100%' } },
  prev_seal: null,
  seal: null,
  ...extra,
});

describe('filter bar', () => {
  it('becomes a query; the time range is counted back from now', () => {
    expect(toQuery(EMPTY_FILTER, 0)).toEqual({ client_id: null, server: null, outcome: null, since: null, until: null, text: null });
    const q = toQuery({ clientId: 'c1', server: 'demo', outcome: 'denied', range: '1h', text: '  note ' }, 10_000_000);
    expect(q).toEqual({ client_id: 'c1', server: 'demo', outcome: 'denied', since: 10_000_000 - 3_600_000, until: null, text: 'note' });
    expect(isFiltered(EMPTY_FILTER)).toBe(false);
    expect(isFiltered({ ...EMPTY_FILTER, text: ' ' })).toBe(false);
    expect(isFiltered({ ...EMPTY_FILTER, range: '7d' })).toBe(true);
  });

  it('matches live events by the same rules as the query', () => {
    const q = toQuery(EMPTY_FILTER, 0);
    expect(matches(ev(1), q)).toBe(true);
    expect(matches(ev(1), { ...q, outcome: 'denied' })).toBe(false);
    expect(matches(ev(1), { ...q, server: 'other' })).toBe(false);
    expect(matches(ev(1), { ...q, client_id: 'c2' })).toBe(false);
    expect(matches(ev(1), { ...q, since: 2_000 })).toBe(false);
    expect(matches(ev(1), { ...q, until: 1_001 })).toBe(false);
    // Text search is case-insensitive (ASCII) over agent, server, tool, kind, actor and details; % and _ are literal.
    expect(matches(ev(1), { ...q, text: 'CLAUDE' })).toBe(true);
    expect(matches(ev(1), { ...q, text: 'shopping_100%' })).toBe(true);
    expect(matches(ev(1), { ...q, text: 'shopping%100' })).toBe(false);
    expect(matches(ev(1, { agent: null, actor: null }), { ...q, text: 'tool_call' })).toBe(true);
    // Only ASCII letters in any case, as SQLite's LIKE: the backlog and live events agree.
    expect(matches(ev(1, { tool: 'ÜBER' }), { ...q, text: 'Über' })).toBe(true);
    expect(matches(ev(1, { tool: 'ÜBER' }), { ...q, text: 'über' })).toBe(false);
  });
});

describe('live merge and paging', () => {
  it('puts a new matching event on top, once', () => {
    const q = toQuery(EMPTY_FILTER, 0);
    const rows = [ev(5), ev(4)];
    const next = mergeLive(rows, ev(6), q);
    expect(next.map((e) => e.id)).toEqual([6, 5, 4]);
    expect(mergeLive(next, ev(6), q)).toBe(next);
    expect(mergeLive(rows, ev(7, { outcome: 'denied' }), { ...q, outcome: 'allowed' })).toBe(rows);
  });

  it('appends older pages without duplicates', () => {
    expect(appendPage([ev(9), ev(8)], [ev(8), ev(7), ev(6)]).map((e) => e.id)).toEqual([9, 8, 7, 6]);
    expect(appendPage([], [ev(3)]).map((e) => e.id)).toEqual([3]);
  });

  it('renders only the rows in view, plus overscan', () => {
    expect(visibleRange(0, 300, 100_000, 30, 10)).toEqual({ start: 0, end: 20 });
    expect(visibleRange(30_000, 300, 100_000, 30, 10)).toEqual({ start: 990, end: 1_020 });
    expect(visibleRange(0, 300, 5, 30, 10)).toEqual({ start: 0, end: 5 });
    expect(visibleRange(-50, 300, 0)).toEqual({ start: 0, end: 0 });
  });

  it('asks for the next page near the end of what is loaded', () => {
    expect(needsMore(PAGE_SIZE - 10, PAGE_SIZE, false)).toBe(true);
    expect(needsMore(20, PAGE_SIZE, false)).toBe(false);
    expect(needsMore(PAGE_SIZE, PAGE_SIZE, true)).toBe(false);
  });
});

describe('cells', () => {
  it('reads well', () => {
    expect(whatLabel(ev(1))).toBe('read_note');
    expect(whatLabel(ev(1, { tool: null, kind: 'agent_revoked' }))).toBe('agent revoked');
    expect(whatLabel(ev(1, { tool: '@instructions', kind: 'tool_changed' }))).toBe("the server's instructions");
    // A call an agent made up under that name is still shown as it named it.
    expect(whatLabel(ev(1, { tool: '@instructions', kind: 'tool_call' }))).toBe('@instructions');
    // A kind a newer core may send reads as words.
    expect(whatLabel(ev(1, { tool: null, kind: 'something_new' as EventKind }))).toBe('something new');
    expect(outcomeLabel(ev(1))).toBe('allowed');
    // A call's start is listed only while no outcome was recorded for it.
    expect(outcomeLabel(ev(1, { kind: 'call_started' }))).toBe('no outcome yet');
    expect(eventCount(null, false)).toBe('');
    expect(eventCount(1, false)).toBe('1 event');
    expect(eventCount(10_000, true)).toBe('10,000+ events');
    expect(formatDuration(null)).toBe('');
    expect(formatDuration(42)).toBe('42 ms');
    expect(formatDuration(1_500)).toBe('1.5 s');
    expect(formatDuration(90_000)).toBe('2 min');
    const now = new Date(2026, 0, 2, 12, 0, 0).getTime();
    expect(formatTime(new Date(2026, 0, 2, 9, 5, 7).getTime(), now)).toBe('09:05:07');
    expect(formatTime(new Date(2025, 11, 31, 23, 59, 0).getTime(), now)).toBe('2025-12-31 23:59');
  });
});
