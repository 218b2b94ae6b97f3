// Activity: the live audit timeline. A dense, windowed table of every event,
// newest first; filters above; the selected event's details and the grant
// that decided it on the right, with Revoke right there.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, errorMessage } from '../../api';
import type { Agent, ExportFormat, Status } from '../../bindings';
import { EMPTY_FILTER, isFiltered, needsMore, toQuery, type FilterBar as Bar } from '../../lib/timeline';
import { Detail } from './Detail';
import { Empty } from './Empty';
import { FilterBar } from './FilterBar';
import { Table } from './Table';
import { useTimeline } from './useTimeline';

export function Activity({ info, agents }: { info: Status | null; agents: Agent[] }) {
  const [bar, setBar] = useState<Bar>(EMPTY_FILTER);
  const [text, setText] = useState('');
  const [selectedId, setSelectedId] = useState<number | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // The query is fixed when the filter changes (a time range is "since then").
  const query = useMemo(() => toQuery(bar, Date.now()), [bar]);
  const timeline = useTimeline(query);
  const { rows, loading, exhausted } = timeline;

  // Debounce the search box.
  useEffect(() => {
    const t = setTimeout(() => setBar((b) => (b.text === text ? b : { ...b, text })), 200);
    return () => clearTimeout(t);
  }, [text]);

  const exportAs = async (format: ExportFormat) => {
    try {
      const path = await api.auditExport(query, format);
      setNotice(`Saved to ${path}`);
    } catch (e) {
      setNotice(`Export failed: ${errorMessage(e)}`);
    }
  };
  const shownNotice = notice ?? timeline.error;
  const selected = rows.find((r) => r.id === selectedId) ?? null;

  return (
    <section class="activity" aria-label="Activity">
      <FilterBar
        bar={bar}
        text={text}
        agents={agents}
        info={info}
        total={timeline.total}
        totalMore={timeline.totalMore}
        onBar={setBar}
        onText={setText}
        onExport={exportAs}
      />
      {shownNotice && (
        <p class="notice" role="status">
          {shownNotice}{' '}
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
            freshFrom={timeline.freshFrom}
            onSelect={setSelectedId}
            onNearEnd={(end) => needsMore(end, rows.length, exhausted) && timeline.loadMore()}
          />
        )}
        {selected && <Detail event={selected} onClose={() => setSelectedId(null)} />}
      </div>
    </section>
  );
}
