// The filter bar above the timeline: search, agent, server, outcome, time
// range; the count of matching events; export.

import type { Agent, ExportFormat, Outcome, Status } from '../../bindings';
import { OUTCOMES, TIME_RANGES, eventCount, type FilterBar as Bar, type TimeRange } from '../../lib/timeline';

export function FilterBar({
  bar,
  text,
  agents,
  info,
  total,
  totalMore,
  onBar,
  onText,
  onExport,
}: {
  bar: Bar;
  text: string;
  agents: Agent[];
  info: Status | null;
  total: number | null;
  totalMore: boolean;
  onBar: (b: Bar) => void;
  onText: (t: string) => void;
  onExport: (f: ExportFormat) => void;
}) {
  const servers = info?.servers.map((s) => s.name) ?? [];
  return (
    <div class="filters" role="search">
      <input
        type="search"
        placeholder="Search events"
        aria-label="Search events"
        value={text}
        onInput={(e) => onText(e.currentTarget.value)}
        data-testid="search"
      />
      <select
        aria-label="Agent"
        value={bar.clientId}
        onChange={(e) => onBar({ ...bar, clientId: e.currentTarget.value })}
      >
        <option value="">All agents</option>
        {agents.map((a) => (
          <option key={a.client_id} value={a.client_id}>
            {a.name}
          </option>
        ))}
      </select>
      <select aria-label="Server" value={bar.server} onChange={(e) => onBar({ ...bar, server: e.currentTarget.value })}>
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
        onChange={(e) => onBar({ ...bar, outcome: e.currentTarget.value as Outcome | '' })}
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
        onChange={(e) => onBar({ ...bar, range: e.currentTarget.value as TimeRange })}
      >
        {TIME_RANGES.map((r) => (
          <option key={r.value} value={r.value}>
            {r.label}
          </option>
        ))}
      </select>
      <span class="spacer" />
      <span class="muted" data-testid="event-count" aria-live="polite">
        {eventCount(total, totalMore)}
      </span>
      <button type="button" class="plain small" onClick={() => onExport('jsonl')} title="Export the filtered events as JSON Lines">
        JSONL
      </button>
      <button type="button" class="plain small" onClick={() => onExport('csv')} title="Export the filtered events as CSV">
        CSV
      </button>
    </div>
  );
}
