// Activity: the live audit timeline. A dense, windowed table of every event,
// newest first; filters above; the selected event's details and the grant
// that decided it on the right, with Revoke right there.

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, errorMessage, on } from '../api';
import type { Agent, AppInfo, AuditEvent, ExportFormat, Grant } from '../bindings';
import {
  EMPTY_FILTER,
  OUTCOMES,
  PAGE_SIZE,
  ROW_HEIGHT,
  TIME_RANGES,
  appendPage,
  formatDuration,
  formatTime,
  isFiltered,
  kindLabel,
  mergeLive,
  needsMore,
  toQuery,
  visibleRange,
  whatLabel,
  type FilterBar,
  type TimeRange,
} from '../lib/timeline';
import { grantLifetime, grantStatus, plural } from '../lib/format';
import type { Outcome } from '../bindings';

export function Activity({ info, agents }: { info: AppInfo | null; agents: Agent[] }) {
  const [bar, setBar] = useState<FilterBar>(EMPTY_FILTER);
  const [text, setText] = useState('');
  const [rows, setRows] = useState<AuditEvent[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [exhausted, setExhausted] = useState(false);
  const [loading, setLoading] = useState(false);
  const [selectedId, setSelectedId] = useState<number | null>(null);
  const [freshFrom, setFreshFrom] = useState(Infinity);
  const [notice, setNotice] = useState<string | null>(null);
  const [reloadTick, setReloadTick] = useState(0);
  // The query is fixed when the filter changes (a time range is "since then").
  const query = useMemo(() => toQuery(bar, Date.now()), [bar, reloadTick]);
  const generation = useRef(0);

  // Debounce the search box.
  useEffect(() => {
    const t = setTimeout(() => setBar((b) => (b.text === text ? b : { ...b, text })), 200);
    return () => clearTimeout(t);
  }, [text]);

  // First page whenever the filter changes.
  useEffect(() => {
    const gen = ++generation.current;
    setLoading(true);
    const started = performance.now();
    api.auditPage(query, null, PAGE_SIZE).then(
      (page) => {
        if (gen !== generation.current) return;
        setRows(page.events);
        setTotal(page.total);
        setExhausted(page.events.length < PAGE_SIZE);
        setFreshFrom(Infinity);
        setLoading(false);
        // For the benchmark: query time, and time until the rows are painted.
        const queryMs = performance.now() - started;
        requestAnimationFrame(() =>
          requestAnimationFrame(() => {
            const w = window as unknown as { __gatehouseTimeline?: { seq: number } };
            w.__gatehouseTimeline = {
              seq: (w.__gatehouseTimeline?.seq ?? 0) + 1,
              queryMs,
              paintedMs: performance.now() - started,
              rows: page.events.length,
              total: page.total,
            } as { seq: number };
          }),
        );
      },
      (e) => {
        if (gen !== generation.current) return;
        setNotice(errorMessage(e));
        setLoading(false);
      },
    );
  }, [query]);

  // Live events, pushed by the Rust side as they commit.
  useEffect(() => {
    const subs = [
      on.auditEvent((e) => {
        setRows((r) => {
          const next = mergeLive(r, e, query);
          if (next !== r) {
            setTotal((t) => (t === null ? t : t + 1));
            setFreshFrom((f) => Math.min(f, e.id));
          }
          return next;
        });
      }),
      on.auditLagged(() => setReloadTick((t) => t + 1)),
    ];
    return () => subs.forEach((s) => s.then((f) => f()));
  }, [query]);

  const loadMore = () => {
    if (loading || exhausted || rows.length === 0) return;
    const gen = generation.current;
    setLoading(true);
    api.auditPage(query, rows[rows.length - 1].id, PAGE_SIZE).then(
      (page) => {
        if (gen !== generation.current) return;
        setRows((r) => appendPage(r, page.events));
        setExhausted(page.events.length < PAGE_SIZE);
        setLoading(false);
      },
      () => setLoading(false),
    );
  };

  const selected = rows.find((r) => r.id === selectedId) ?? null;
  const exportAs = async (format: ExportFormat) => {
    try {
      const path = await api.auditExport(query, format);
      setNotice(`Saved to ${path}`);
    } catch (e) {
      setNotice(`Export failed: ${errorMessage(e)}`);
    }
  };
  const servers = info?.servers ?? [];

  return (
    <section class="activity" aria-label="Activity">
      <div class="filters" role="search">
        <input
          type="search"
          placeholder="Search events"
          aria-label="Search events"
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
          data-testid="search"
        />
        <select
          aria-label="Agent"
          value={bar.clientId}
          onChange={(e) => setBar({ ...bar, clientId: e.currentTarget.value })}
        >
          <option value="">All agents</option>
          {agents.map((a) => (
            <option key={a.client_id} value={a.client_id}>
              {a.name}
            </option>
          ))}
        </select>
        <select aria-label="Server" value={bar.server} onChange={(e) => setBar({ ...bar, server: e.currentTarget.value })}>
          <option value="">All servers</option>
          {servers.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <select
          aria-label="Outcome"
          value={bar.outcome}
          onChange={(e) => setBar({ ...bar, outcome: e.currentTarget.value as Outcome | '' })}
          data-testid="outcome"
        >
          <option value="">All outcomes</option>
          {OUTCOMES.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
        <select
          aria-label="Time range"
          value={bar.range}
          onChange={(e) => setBar({ ...bar, range: e.currentTarget.value as TimeRange })}
        >
          {TIME_RANGES.map((r) => (
            <option key={r.value} value={r.value}>
              {r.label}
            </option>
          ))}
        </select>
        <span class="spacer" />
        <span class="muted" data-testid="event-count" aria-live="polite">
          {total === null ? '' : plural(total, 'event')}
        </span>
        <button type="button" class="plain small" onClick={() => exportAs('jsonl')} title="Export the filtered events as JSON Lines">
          JSONL
        </button>
        <button type="button" class="plain small" onClick={() => exportAs('csv')} title="Export the filtered events as CSV">
          CSV
        </button>
      </div>
      {notice && (
        <p class="notice" role="status">
          {notice}{' '}
          <button type="button" class="link" onClick={() => setNotice(null)}>
            Dismiss
          </button>
        </p>
      )}
      <div class="activity-body">
        {rows.length === 0 && !loading ? (
          <Empty info={info} filtered={isFiltered(bar)} onClear={() => (setText(''), setBar(EMPTY_FILTER))} />
        ) : (
          <Table
            rows={rows}
            selectedId={selectedId}
            freshFrom={freshFrom}
            onSelect={setSelectedId}
            onNearEnd={(end) => needsMore(end, rows.length, exhausted) && loadMore()}
          />
        )}
        {selected && <Detail event={selected} onClose={() => setSelectedId(null)} />}
      </div>
    </section>
  );
}

function Empty({ info, filtered, onClear }: { info: AppInfo | null; filtered: boolean; onClear: () => void }) {
  if (filtered) {
    return (
      <div class="empty">
        <p>No events match these filters.</p>
        <button type="button" class="plain" onClick={onClear}>
          Clear filters
        </button>
      </div>
    );
  }
  const url = info ? `${info.url}/mcp/${info.servers[0] ?? 'demo'}` : 'http://127.0.0.1:…/mcp/demo';
  return (
    <div class="empty">
      <p class="empty-title">Nothing has happened yet.</p>
      <p>
        Point an AI client at <code>{url}</code>. When it asks for access, Gatehouse shows you who asks and for which
        tools; every call it makes then appears here.
      </p>
    </div>
  );
}

function Table({
  rows,
  selectedId,
  freshFrom,
  onSelect,
  onNearEnd,
}: {
  rows: AuditEvent[];
  selectedId: number | null;
  freshFrom: number;
  onSelect: (id: number) => void;
  onNearEnd: (end: number) => void;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState({ top: 0, height: 600 });
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const measure = () => setScroll({ top: el.scrollTop, height: el.clientHeight });
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const { start, end } = visibleRange(scroll.top, scroll.height, rows.length);
  useEffect(() => onNearEnd(end), [end, rows.length]);
  const now = Date.now();

  const onKeyDown = (e: KeyboardEvent) => {
    const i = rows.findIndex((r) => r.id === selectedId);
    const next = e.key === 'ArrowDown' ? i + 1 : e.key === 'ArrowUp' ? i - 1 : null;
    if (next === null) return;
    e.preventDefault();
    const clamped = Math.max(0, Math.min(rows.length - 1, next));
    onSelect(rows[clamped].id);
    const el = scroller.current;
    if (el) {
      const y = clamped * ROW_HEIGHT;
      if (y < el.scrollTop) el.scrollTop = y;
      else if (y + ROW_HEIGHT > el.scrollTop + el.clientHeight) el.scrollTop = y + ROW_HEIGHT - el.clientHeight;
    }
  };

  return (
    <div class="table" role="grid" aria-rowcount={rows.length} aria-label="Events, newest first">
      <div class="row head" role="row">
        <span role="columnheader">Time</span>
        <span role="columnheader">Agent</span>
        <span role="columnheader">Server</span>
        <span role="columnheader">Tool / event</span>
        <span role="columnheader">Outcome</span>
        <span role="columnheader" class="num">
          Duration
        </span>
      </div>
      <div
        class="rows"
        ref={scroller}
        tabIndex={0}
        onScroll={(e) => setScroll({ top: e.currentTarget.scrollTop, height: e.currentTarget.clientHeight })}
        onKeyDown={onKeyDown}
        data-testid="timeline"
      >
        <div class="spacer-rows" style={{ height: `${rows.length * ROW_HEIGHT}px` }}>
          {rows.slice(start, end).map((e, i) => (
            <div
              key={e.id}
              role="row"
              aria-rowindex={start + i + 1}
              aria-selected={e.id === selectedId}
              class={`row${e.id === selectedId ? ' selected' : ''}${e.id >= freshFrom ? ' fresh' : ''}`}
              style={{ transform: `translateY(${(start + i) * ROW_HEIGHT}px)` }}
              onClick={() => onSelect(e.id)}
              data-event-id={e.id}
              data-kind={e.kind}
              data-tool={e.tool ?? undefined}
            >
              <span role="gridcell" class="time">
                {formatTime(e.at, now)}
              </span>
              <span role="gridcell" class="ellipsis">
                {e.agent ?? ''}
              </span>
              <span role="gridcell" class="ellipsis">
                {e.server ?? ''}
              </span>
              <span role="gridcell" class={`ellipsis${e.tool ? ' mono' : ' muted'}`}>
                {whatLabel(e)}
              </span>
              <span role="gridcell">
                <span class={`chip ${e.outcome}`}>{e.outcome}</span>
              </span>
              <span role="gridcell" class="num muted">
                {formatDuration(e.duration_ms)}
              </span>
            </div>
          ))}
        </div>
      </div>
    </div>
  );
}

function Detail({ event, onClose }: { event: AuditEvent; onClose: () => void }) {
  const [grant, setGrant] = useState<Grant | null | undefined>(undefined);
  const [busy, setBusy] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const load = () => {
    if (event.grant_id) api.grant(event.grant_id).then(setGrant, () => setGrant(null));
    else setGrant(null);
  };
  useEffect(() => {
    setMessage(null);
    setGrant(undefined);
    load();
  }, [event.id]);
  const now = Date.now();

  const revoke = async (what: 'grant' | 'agent') => {
    setBusy(what);
    try {
      if (what === 'grant' && event.grant_id) await api.revokeGrant(event.grant_id);
      if (what === 'agent' && event.client_id) await api.revokeAgent(event.client_id);
      setMessage(what === 'grant' ? 'Grant revoked. The next call with it fails.' : `${event.agent ?? 'The agent'} is revoked.`);
      load();
    } catch (e) {
      setMessage(errorMessage(e));
    } finally {
      setBusy(null);
    }
  };

  const args = (event.detail as { arguments?: unknown } | null)?.arguments;
  return (
    <aside class="detail" aria-label="Event details" data-testid="detail">
      <header>
        <h2>{event.tool ?? kindLabel(event.kind)}</h2>
        <button type="button" class="link" onClick={onClose} aria-label="Close details">
          ✕
        </button>
      </header>
      <dl>
        <dt>When</dt>
        <dd>{new Date(event.at).toLocaleString()}</dd>
        <dt>Outcome</dt>
        <dd>
          <span class={`chip ${event.outcome}`}>{event.outcome}</span>
          {event.duration_ms !== null && <span class="muted"> in {formatDuration(event.duration_ms)}</span>}
        </dd>
        {event.agent && (
          <>
            <dt>Agent</dt>
            <dd>{event.agent}</dd>
          </>
        )}
        {event.server && (
          <>
            <dt>Server</dt>
            <dd>{event.server}</dd>
          </>
        )}
        <dt>Event</dt>
        <dd class="mono">{event.kind}</dd>
        {event.actor && (
          <>
            <dt>Decided by</dt>
            <dd>{event.actor}</dd>
          </>
        )}
      </dl>
      {args !== undefined && (
        <>
          <h3>Arguments</h3>
          <pre class="json">{JSON.stringify(args, null, 2)}</pre>
        </>
      )}
      {args === undefined && event.detail !== null && Object.keys(event.detail as object).length > 0 && (
        <>
          <h3>Details</h3>
          <pre class="json">{JSON.stringify(event.detail, null, 2)}</pre>
        </>
      )}
      <h3>Why was this {event.outcome === 'allowed' ? 'allowed' : 'decided so'}?</h3>
      {grant === undefined && <p class="muted">Loading the grant…</p>}
      {grant === null && (
        <p class="muted">
          {event.outcome === 'allowed' ? 'No grant is recorded for this event.' : 'No grant allowed it.'}
        </p>
      )}
      {grant && (
        <div class={`grant-box ${grantStatus(grant, now)}`} data-testid="detail-grant">
          <p>
            Grant <code>{grant.id}</code>, decided by {grant.decided_by}:{' '}
            <strong>{grantLifetime(grant, now)}</strong>
          </p>
          <ul class="tool-chips">
            {grant.tools.map((t) => (
              <li key={t} class={t === event.tool ? 'hit' : ''}>
                {t}
              </li>
            ))}
          </ul>
        </div>
      )}
      <div class="detail-actions">
        {grant && grantStatus(grant, now) === 'active' && (
          <button type="button" class="danger" disabled={busy !== null} onClick={() => revoke('grant')}>
            {busy === 'grant' ? 'Revoking…' : 'Revoke this grant'}
          </button>
        )}
        {event.client_id && (
          <button
            type="button"
            class="danger plain"
            disabled={busy !== null}
            onClick={() => revoke('agent')}
            data-testid="detail-revoke-agent"
          >
            {busy === 'agent' ? 'Revoking…' : `Revoke ${event.agent ?? 'agent'}`}
          </button>
        )}
      </div>
      {message && (
        <p class="notice" role="status">
          {message}
        </p>
      )}
    </aside>
  );
}
