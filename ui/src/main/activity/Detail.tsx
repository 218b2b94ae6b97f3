// The detail pane: one event, its arguments, the grant that decided it, and
// Revoke right there.

import { useEffect, useState } from 'preact/hooks';
import { api, errorMessage } from '../../api';
import type { AuditEvent, Grant } from '../../bindings';
import { grantLifetime, grantStatus } from '../../lib/format';
import { formatDuration, kindLabel, outcomeLabel } from '../../lib/timeline';
import { inert, inertJson } from '../../lib/inert';

export function Detail({ event, onClose }: { event: AuditEvent; onClose: () => void }) {
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
        <h2>{inert(event.tool ?? kindLabel(event.kind))}</h2>
        <button type="button" class="link" onClick={onClose} aria-label="Close details">
          ✕
        </button>
      </header>
      <dl>
        <dt>When</dt>
        <dd>{new Date(event.at).toLocaleString()}</dd>
        <dt>Outcome</dt>
        <dd>
          <span class={`chip ${event.outcome}`}>{outcomeLabel(event)}</span>
          {event.duration_ms !== null && <span class="muted"> in {formatDuration(event.duration_ms)}</span>}
        </dd>
        {event.agent && (
          <>
            <dt>Agent</dt>
            <dd>{inert(event.agent)}</dd>
          </>
        )}
        {event.server && (
          <>
            <dt>Server</dt>
            <dd>{inert(event.server)}</dd>
          </>
        )}
        <dt>Event</dt>
        <dd class="mono">{event.kind}</dd>
        {event.actor && (
          <>
            <dt>Decided by</dt>
            <dd>{inert(event.actor)}</dd>
          </>
        )}
      </dl>
      {args !== undefined && (
        <>
          <h3>Arguments</h3>
          <pre class="json">{inertJson(args)}</pre>
        </>
      )}
      {args === undefined && event.detail !== null && Object.keys(event.detail as object).length > 0 && (
        <>
          <h3>Details</h3>
          <pre class="json">{inertJson(event.detail)}</pre>
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
                {inert(t)}
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
            {busy === 'agent' ? 'Revoking…' : `Revoke ${inert(event.agent ?? 'agent')}`}
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
