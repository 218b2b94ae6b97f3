// Settings: what this Gatehouse runs with, and how to drive it from a terminal.

import { useState } from 'preact/hooks';
import { api, errorMessage } from '../api';
import type { AuditVerification, Status } from '../bindings';
import { inert } from '../lib/inert';

export function Settings({ info }: { info: Status | null }) {
  if (!info) return null;
  const minutes = Math.round(info.consent_timeout_ms / 60_000);
  return (
    <section class="settings" aria-label="Settings">
      <header class="view-head">
        <h1>Settings</h1>
      </header>
      <dl class="facts">
        <dt>Address</dt>
        <dd>
          <code>{info.url}</code> (loopback only)
        </dd>
        <dt>Port</dt>
        <dd>
          {info.port}. Choose another with <code>--port</code> or <code>port</code> in the config file.
        </dd>
        <dt>Consent requests</dt>
        <dd>Denied on their own after {minutes} min without an answer. Nothing is granted on timeout.</dd>
        <dt>Config file</dt>
        <dd data-testid="config-path">
          {info.config_path ? (
            <>
              <code>{info.config_path}</code>. Edits to it take effect while Gatehouse runs.
            </>
          ) : (
            'None: the built-in demo configuration.'
          )}
          {info.config_problem && (
            <p class="error" role="alert">
              Not in force: {inert(info.config_problem)}
            </p>
          )}
        </dd>
        <dt>Data</dt>
        <dd>
          <code>{info.data_dir}</code>
        </dd>
        <dt>Theme</dt>
        <dd>Follows the system (light or dark).</dd>
        <dt>Version</dt>
        <dd>{info.version}</dd>
      </dl>
      <AuditIntegrity />
      <h2>From a terminal</h2>
      <p class="muted">The CLI talks to this running app:</p>
      <pre class="json">{`gatehouse --data-dir '${info.data_dir}' pending
gatehouse --data-dir '${info.data_dir}' agents
gatehouse --data-dir '${info.data_dir}' log --follow`}</pre>
    </section>
  );
}

/** The audit log's chain: verified on request, and every broken event named. */
function AuditIntegrity() {
  const [result, setResult] = useState<AuditVerification | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const verify = async () => {
    setBusy(true);
    setError(null);
    try {
      setResult(await api.auditVerify());
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  const intact = result !== null && result.problem_count === 0;
  return (
    <>
      <h2>Audit log</h2>
      <p class="muted">
        Every event is sealed to the one before it with a key kept outside the database, so an edited, deleted,
        inserted or reordered event shows.
      </p>
      <p>
        <button type="button" class="plain" onClick={verify} disabled={busy} data-testid="verify-audit">
          {busy ? 'Checking…' : 'Check the audit log'}
        </button>
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {result && (
        <div class={`grant-box ${intact ? 'active' : 'expired'}`} role="status" data-testid="audit-integrity">
          {intact ? (
            <p>All {result.events.toLocaleString()} events hold.</p>
          ) : (
            <>
              <p>
                <strong>The audit log was tampered with:</strong> {result.problem_count.toLocaleString()} of{' '}
                {result.events.toLocaleString()} events do not hold.
              </p>
              <ul>
                {result.problems.map((p) => (
                  <li key={`${p.id}-${p.what}`}>{inert(p.message)}</li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
    </>
  );
}
