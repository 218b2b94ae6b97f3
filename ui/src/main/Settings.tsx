// Settings: what this Gatehouse runs with, and how to drive it from a terminal.

import type { Status } from '../bindings';

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
        <dt>Data</dt>
        <dd>
          <code>{info.data_dir}</code>
        </dd>
        <dt>Theme</dt>
        <dd>Follows the system (light or dark).</dd>
        <dt>Version</dt>
        <dd>{info.version}</dd>
      </dl>
      <h2>From a terminal</h2>
      <p class="muted">The CLI talks to this running app:</p>
      <pre class="json">{`gatehouse --data-dir '${info.data_dir}' pending
gatehouse --data-dir '${info.data_dir}' agents
gatehouse --data-dir '${info.data_dir}' log --follow`}</pre>
    </section>
  );
}
