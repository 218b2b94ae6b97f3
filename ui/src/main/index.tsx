// The main window: a sidebar with Activity (first), Agents, Servers, Settings.

import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import '../styles/base.css';
import '../styles/main.css';
import { reportFatalErrors } from '../lib/fatal';
import { api, on } from '../api';
import type { Agent, Status, PendingItem } from '../bindings';
import { Activity } from './activity/Activity';
import { Agents } from './Agents';
import { Servers } from './Servers';
import { Settings } from './Settings';
import { plural } from '../lib/format';
import { applyTheme } from '../lib/theme';

type View = 'activity' | 'agents' | 'servers' | 'settings';

const VIEWS: { id: View; label: string }[] = [
  { id: 'activity', label: 'Activity' },
  { id: 'agents', label: 'Agents' },
  { id: 'servers', label: 'Servers' },
  { id: 'settings', label: 'Settings' },
];

/** Events after which the agents list (names, grants, last seen) may have changed. */
const AGENT_EVENTS = new Set([
  'client_registered',
  'consent_approved',
  'grant_revoked',
  'agent_revoked',
  'token_issued',
  'token_revoked',
  'paused',
  'resumed',
]);

function App() {
  const [view, setView] = useState<View>('activity');
  const [info, setInfo] = useState<Status | null>(null);
  const [agents, setAgents] = useState<Agent[]>([]);
  const [pending, setPending] = useState<PendingItem[]>([]);

  const reloadAgents = useCallback(() => {
    api.agents().then(setAgents, () => {});
  }, []);

  useEffect(() => {
    api.settings().then((s) => applyTheme(s.theme), () => {});
    api.status().then(setInfo);
    // The config file can change while the app runs (and a bad edit be reported).
    const timer = setInterval(() => api.status().then(setInfo), 5000);
    api.pending().then(setPending);
    reloadAgents();
    const subs = [
      on.pendingChanged(setPending),
      on.auditEvent((e) => {
        if (AGENT_EVENTS.has(e.kind)) reloadAgents();
        if (e.kind === 'paused' || e.kind === 'resumed') api.status().then(setInfo);
      }),
    ];
    return () => {
      clearInterval(timer);
      subs.forEach((s) => s.then((f) => f()));
    };
  }, []);

  return (
    <div class="shell">
      <nav class="sidebar" aria-label="Sections">
        <div class="brand">Gatehouse</div>
        <ul role="tablist" aria-orientation="vertical">
          {VIEWS.map((v) => (
            <li key={v.id}>
              <button
                type="button"
                role="tab"
                aria-selected={view === v.id}
                class={view === v.id ? 'active' : ''}
                onClick={() => setView(v.id)}
                data-view={v.id}
              >
                {v.label}
                {v.id === 'agents' && agents.length > 0 && <span class="count">{agents.length}</span>}
              </button>
            </li>
          ))}
        </ul>
        {info && !info.paused.all && (
          <button
            type="button"
            class="plain small pause-all"
            onClick={() => api.pause(null).then(() => api.status().then(setInfo))}
            data-testid="pause-all"
            title="Refuse every agent's calls until you resume; nothing is revoked"
          >
            Pause all agents
          </button>
        )}
        {info && (
          <p class="sidebar-foot" title={info.data_dir}>
            {info.url.replace('http://', '')}
          </p>
        )}
      </nav>
      <div class="content">
        {info?.paused.all && (
          <div class="banner paused" role="status" data-testid="paused-banner">
            Every agent is paused: their calls are refused until you resume.
            <button
              type="button"
              class="primary small"
              onClick={() => api.resume(null).then(() => api.status().then(setInfo))}
              data-testid="resume-all"
            >
              Resume
            </button>
          </div>
        )}
        {pending.length > 0 && (
          <div class="banner" role="status">
            {plural(pending.length, 'request')} waiting for your decision.
            <button type="button" class="primary small" onClick={() => api.showConsent()}>
              Review
            </button>
          </div>
        )}
        {view === 'activity' && <Activity info={info} agents={agents} />}
        {view === 'agents' && <Agents info={info} agents={agents} reload={reloadAgents} />}
        {view === 'servers' && <Servers />}
        {view === 'settings' && <Settings info={info} />}
      </div>
    </div>
  );
}

reportFatalErrors();
render(<App />, document.getElementById('app')!);
