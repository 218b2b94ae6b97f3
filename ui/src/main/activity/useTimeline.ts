// The timeline's data: the first page whenever the query changes, older pages
// as the person scrolls, and live events merged in as the core commits them.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorMessage, on } from '../../api';
import type { AuditEvent, AuditFilter } from '../../bindings';
import { PAGE_SIZE, appendPage, mergeLive } from '../../lib/timeline';

export interface Timeline {
  rows: AuditEvent[];
  /** Every event matching the query (counted with the first page). */
  total: number | null;
  /** More than `total` match (the count stops at a cap). */
  totalMore: boolean;
  loading: boolean;
  /** No older page is left. */
  exhausted: boolean;
  /** Rows with an id at or above this arrived live (they fade in). */
  freshFrom: number;
  error: string | null;
  loadMore: () => void;
}

export function useTimeline(query: AuditFilter): Timeline {
  const [rows, setRows] = useState<AuditEvent[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [totalMore, setTotalMore] = useState(false);
  const [exhausted, setExhausted] = useState(false);
  const [loading, setLoading] = useState(false);
  const [freshFrom, setFreshFrom] = useState(Infinity);
  const [error, setError] = useState<string | null>(null);
  const generation = useRef(0);

  // First page whenever the query changes.
  useEffect(() => {
    const gen = ++generation.current;
    setLoading(true);
    setError(null);
    const started = performance.now();
    api.auditPage(query, null, PAGE_SIZE).then(
      (page) => {
        if (gen !== generation.current) return;
        setRows(page.events);
        setTotal(page.total);
        setTotalMore(page.total_more);
        setExhausted(page.events.length < PAGE_SIZE);
        setFreshFrom(Infinity);
        setLoading(false);
        reportTiming(performance.now() - started, started, page.events.length, page.total);
      },
      (e) => {
        if (gen !== generation.current) return;
        setError(errorMessage(e));
        setLoading(false);
      },
    );
  }, [query]);

  // Live events, pushed by the Rust side as they commit.
  useEffect(() => {
    const sub = on.auditEvent((e) => {
      setRows((r) => {
        const next = mergeLive(r, e, query);
        if (next !== r) {
          setTotal((t) => (t === null ? t : t + 1));
          setFreshFrom((f) => Math.min(f, e.id));
        }
        return next;
      });
    });
    return () => sub.then((f) => f());
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

  return { rows, total, totalMore, loading, exhausted, freshFrom, error, loadMore };
}

/** For the benchmark (ui/e2e/bench.mjs): query time, and time until the rows are painted. */
function reportTiming(queryMs: number, started: number, rows: number, total: number | null) {
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      const w = window as unknown as { __gatehouseTimeline?: { seq: number } };
      w.__gatehouseTimeline = {
        seq: (w.__gatehouseTimeline?.seq ?? 0) + 1,
        queryMs,
        paintedMs: performance.now() - started,
        rows,
        total,
      } as { seq: number };
    }),
  );
}
