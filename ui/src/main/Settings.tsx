import type { ComponentChildren } from 'preact';
// Settings: what the person can change (saved to the config file, in force
// at once), what this Gatehouse runs with, and how to drive it from a terminal.

import { useEffect, useState } from 'preact/hooks';
import { api, errorMessage } from '../api';
import type {
  Agent,
  AskDefault,
  AuditVerification,
  DefaultDuration,
  Rule,
  RuleAction,
  Settings as SettingsType,
  SettingsChange,
  Status,
  Theme,
} from '../bindings';
import { applyTheme } from '../lib/theme';
import { inert } from '../lib/inert';

export function Settings({ info }: { info: Status | null }) {
  if (!info) return null;
  return (
    <section class="settings" aria-label="Settings">
      <header class="view-head">
        <h1>Settings</h1>
      </header>
      <SettingsForm />
      <Rules />
      <dl class="facts">
        <dt>Address</dt>
        <dd>
          <code>{info.url}</code> (loopback only)
        </dd>
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
        <dt>Version</dt>
        <dd>{info.version}</dd>
      </dl>
      <AuditIntegrity />
      <h2>From a terminal</h2>
      <p class="muted">The CLI talks to this running app:</p>
      <pre class="json">{`gatehouse --data-dir '${info.data_dir}' pending
gatehouse --data-dir '${info.data_dir}' agents
gatehouse --data-dir '${info.data_dir}' settings
gatehouse --data-dir '${info.data_dir}' log --follow`}</pre>
    </section>
  );
}

const TIMEOUTS = [30, 60, 120, 300, 600, 1800, 3600];
const DURATIONS: { value: DefaultDuration; label: string }[] = [
  { value: 'once', label: 'Once' },
  { value: 'hour', label: '1 hour' },
  { value: 'day', label: '1 day' },
  { value: 'forever', label: 'Until revoked' },
];

/** The settings that can be changed: saved to the config file, in force at once (a new port at the next start). */
function SettingsForm() {
  const [saved, setSaved] = useState<SettingsType | null>(null);
  const [draft, setDraft] = useState<SettingsType | null>(null);
  const [autostart, setAutostart] = useState<boolean | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.settings().then((s) => {
      setSaved(s);
      setDraft(s);
    });
    api.autostart().then(setAutostart, () => setAutostart(null));
  }, []);
  if (!saved || !draft) return null;
  const set = (change: Partial<SettingsType>) => setDraft({ ...draft, ...change });
  const changed = JSON.stringify(saved) !== JSON.stringify(draft);
  const save = async () => {
    setMessage(null);
    setError(null);
    try {
      const result = await api.changeSettings(settingsChange(saved, draft));
      setSaved(result.settings);
      setDraft(result.settings);
      applyTheme(result.settings.theme);
      setMessage(result.restart_needed ? `Saved. ${result.restart_needed}.` : 'Saved; in force now.');
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  const toggleAutostart = async () => {
    try {
      setAutostart(await api.setAutostart(!autostart));
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  const timeouts = TIMEOUTS.includes(draft.consent_timeout_secs)
    ? TIMEOUTS
    : [...TIMEOUTS, draft.consent_timeout_secs].sort((a, b) => a - b);
  return (
    <form
      class="settings-form"
      onSubmit={(e) => {
        e.preventDefault();
        save();
      }}
      aria-label="Change settings"
    >
      <NumberSetting label="Port" min={1} max={65535} value={draft.port} onChange={(port) => set({ port })} testId="setting-port">
        <span class="muted small">
          Listening on {saved.listening_port}
          {saved.port_from_command_line
            ? ' (given on the command line, which wins over this setting)'
            : saved.port !== saved.listening_port && ` (${saved.port} after a restart)`}
          . A change takes effect at the next start.
        </span>
      </NumberSetting>
      <label>
        <span>A consent request waits</span>
        <select
          value={String(draft.consent_timeout_secs)}
          onChange={(e) => set({ consent_timeout_secs: Number((e.target as HTMLSelectElement).value) })}
          data-testid="setting-consent-timeout"
        >
          {timeouts.map((t) => (
            <option key={t} value={String(t)}>
              {t < 60 ? `${t} seconds` : `${t / 60} min`}
            </option>
          ))}
        </select>
        <span class="muted small">then it is denied; nothing is granted on timeout.</span>
      </label>
      <label>
        <span>Consent window picks first</span>
        <select
          value={draft.default_duration}
          onChange={(e) => set({ default_duration: (e.target as HTMLSelectElement).value as DefaultDuration })}
          data-testid="setting-default-duration"
        >
          {DURATIONS.map((d) => (
            <option key={d.value} value={d.value}>
              {d.label}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span>Ask every time for</span>
        <select
          value={draft.ask_every_time}
          onChange={(e) => set({ ask_every_time: (e.target as HTMLSelectElement).value as AskDefault })}
          data-testid="setting-ask"
        >
          <option value="destructive">destructive tools</option>
          <option value="none">no tool</option>
        </select>
      </label>
      <NumberSetting
        label="Keep audit events for"
        min={0}
        max={3650}
        value={draft.keep_audit_days}
        onChange={(keep_audit_days) => set({ keep_audit_days })}
        testId="setting-keep-days"
      >
        <span class="muted small">days (0 keeps them all)</span>
      </NumberSetting>
      <NumberSetting
        label="Keep at most"
        min={0}
        value={draft.keep_audit_events}
        onChange={(keep_audit_events) => set({ keep_audit_events })}
        testId="setting-keep-events"
      >
        <span class="muted small">
          audit events (0: no limit). Older ones are first exported to the data directory's audit-archive
          folder, then deleted; the log still verifies.
        </span>
      </NumberSetting>
      <label class="check">
        <input
          type="checkbox"
          checked={draft.bind_grants_to_program}
          onChange={() => set({ bind_grants_to_program: !draft.bind_grants_to_program })}
          data-testid="setting-bind"
        />
        <span>Bind grants to the program that asked (another program's use of a token is refused, not only flagged)</span>
      </label>
      <label>
        <span>Theme</span>
        <select
          value={draft.theme}
          onChange={(e) => set({ theme: (e.target as HTMLSelectElement).value as Theme })}
          data-testid="setting-theme"
        >
          <option value="system">Follow the system</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      </label>
      <p>
        <button type="submit" class="primary" disabled={!changed} data-testid="save-settings">
          Save
        </button>
      </p>
      {message && (
        <p class="notice" role="status" data-testid="settings-saved">
          {message}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <label class="check">
        <input
          type="checkbox"
          checked={autostart === true}
          disabled={autostart === null}
          onChange={toggleAutostart}
          data-testid="setting-autostart"
        />
        <span>Start Gatehouse when I log in (in the tray){autostart === null && ' — not available here'}</span>
      </label>
    </form>
  );
}

const ACTIONS: { value: RuleAction; label: string }[] = [
  { value: 'allow', label: 'allow' },
  { value: 'ask', label: 'ask every call' },
  { value: 'deny', label: "don't allow" },
];

/** The rules kept for agents: what each decides, changed or deleted here. */
function Rules() {
  const [rules, setRules] = useState<Rule[] | null>(null);
  const [agents, setAgents] = useState<Agent[]>([]);
  const [error, setError] = useState<string | null>(null);
  const reload = () => {
    api.rules().then(setRules, (e) => setError(errorMessage(e)));
    api.agents().then(setAgents, () => {});
  };
  useEffect(reload, []);
  const change = async (id: string, action: RuleAction | null) => {
    setError(null);
    try {
      await api.changeRule(id, action);
    } catch (e) {
      setError(errorMessage(e));
    }
    reload();
  };
  if (rules === null) return null;
  const nameOf = (id: string) => agents.find((a) => a.client_id === id)?.name ?? id;
  return (
    <section aria-label="Rules" data-testid="rules">
      <h2>Rules</h2>
      <p class="muted">
        What you decided once for an agent, applied when it asks for tools: a request the rules decide whole gets no
        window. Tick “Remember for this agent” in the consent window to add some.
      </p>
      {rules.length === 0 ? (
        <p class="muted">No rules yet.</p>
      ) : (
        <table class="rules">
          <tbody>
            {rules.map((r) => (
              <tr key={r.id} data-rule={r.id}>
                <td>{inert(nameOf(r.client_id))}</td>
                <td>
                  {r.target.kind === 'risk' ? `${r.target.value} tools` : <code>{inert(r.target.value)}</code>}
                  {r.server ? <> on {inert(r.server)}</> : ' on every server'}
                </td>
                <td>
                  <select
                    value={r.action}
                    onChange={(e) => change(r.id, (e.target as HTMLSelectElement).value as RuleAction)}
                    aria-label="What the rule decides"
                  >
                    {ACTIONS.map((a) => (
                      <option key={a.value} value={a.value}>
                        {a.label}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  <button type="button" class="plain small" onClick={() => change(r.id, null)} data-testid="delete-rule">
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

/** A number input with its label and a note. */
function NumberSetting(props: {
  label: string;
  min: number;
  max?: number;
  value: number;
  onChange: (n: number) => void;
  testId: string;
  children: ComponentChildren;
}) {
  return (
    <label>
      <span>{props.label}</span>
      <input
        type="number"
        min={props.min}
        max={props.max}
        value={props.value}
        onInput={(e) => props.onChange(Number((e.target as HTMLInputElement).value))}
        data-testid={props.testId}
      />
      {props.children}
    </label>
  );
}

/** Only what the person changed goes to the config file. */
export function settingsChange(saved: SettingsType, draft: SettingsType): SettingsChange {
  const pick = <K extends keyof SettingsType>(k: K) => (saved[k] === draft[k] ? null : draft[k]);
  return {
    port: pick('port'),
    consent_timeout_secs: pick('consent_timeout_secs'),
    default_duration: pick('default_duration'),
    ask_every_time: pick('ask_every_time'),
    bind_grants_to_program: pick('bind_grants_to_program'),
    theme: pick('theme'),
    keep_audit_days: pick('keep_audit_days'),
    keep_audit_events: pick('keep_audit_events'),
  };
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
