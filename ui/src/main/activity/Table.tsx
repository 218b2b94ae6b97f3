// The timeline table: a dense, windowed list of events (only the rows in view
// are in the DOM), newest first, keyboard navigable.

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { AuditEvent } from '../../bindings';
import { ROW_HEIGHT, formatDuration, formatTime, outcomeLabel, visibleRange, whatLabel } from '../../lib/timeline';
import { inert } from '../../lib/inert';

export function Table({
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
                {inert(e.agent ?? '')}
              </span>
              <span role="gridcell" class="ellipsis">
                {inert(e.server ?? '')}
              </span>
              <span role="gridcell" class={`ellipsis${e.tool ? ' mono' : ' muted'}`}>
                {inert(whatLabel(e))}
              </span>
              <span role="gridcell">
                <span class={`chip ${e.outcome}`}>{outcomeLabel(e)}</span>
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

