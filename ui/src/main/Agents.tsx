// Agents: one card per agent with its grants; Pause/Resume and Revoke per
// agent, Revoke per grant; a red Revoke all (with a confirmation) at the top.

import { useState } from 'preact/hooks';
import { api, errorMessage } from '../api';
import type { Agent, Status } from '../bindings';
import { identityBadge } from '../lib/consent';
import { ago, clientUrl, grantLifetime, hostOf, plural, programText } from '../lib/format';
import { inert } from '../lib/inert';

export function Agents({ info, agents, reload }: { info: Status | null; agents: Agent[]; reload: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const now = Date.now();
  const grantCount = agents.reduce((n, a) => n + a.grants.length, 0);

  // The button changes only after the core has committed the revocation.
  const run = async (key: string, f: () => Promise<unknown>, done: string) => {
    setBusy(key);
    setMessage(null);
    try {
      await f();
      setMessage(done);
    } catch (e) {
      setMessage(errorMessage(e));
    } finally {
      setBusy(null);
      setConfirming(false);
      reload();
    }
  };

  return (
    <section class="agents" aria-label="Agents">
      <header class="view-head">
        <h1>Agents</h1>
        <span class="spacer" />
        {agents.length > 0 &&
          (confirming ? (
            <div class="confirm" role="alertdialog" aria-label="Revoke every agent?">
              <span>
                Revoke every agent? {plural(grantCount, 'grant')} end now; each agent's next call fails.
              </span>
              <button type="button" class="plain" onClick={() => setConfirming(false)}>
                Cancel
              </button>
              <button
                type="button"
                class="danger"
                disabled={busy !== null}
                onClick={() => run('all', api.revokeAll, 'Every agent is revoked.')}
                data-testid="revoke-all-confirm"
              >
                Revoke all
              </button>
            </div>
          ) : (
            <button type="button" class="danger" onClick={() => setConfirming(true)} data-testid="revoke-all">
              Revoke all
            </button>
          ))}
      </header>
      {message && (
        <p class="notice" role="status">
          {message}
        </p>
      )}
      {agents.length === 0 && (
        <div class="empty">
          <p class="empty-title">No agents yet.</p>
          <p>
            Point an AI client at <code>{clientUrl(info)}</code>. It
            registers itself and asks you for access; it then shows up here.
          </p>
        </div>
      )}
      <div class="cards">
        {agents.map((a) => {
          const badge = identityBadge(a);
          const hosts = [...new Set(a.redirect_uris.map(hostOf))];
          return (
            <article class="card" key={a.client_id} data-agent={a.name} aria-label={a.name}>
              <header>
                <div>
                  <span class={`badge ${badge.tone}`}>{badge.text}</span>
                  {a.paused && (
                    <span class="badge paused" title={`Paused ${ago(a.paused.at, now)}`}>
                      Paused
                    </span>
                  )}
                  <h2>{inert(a.name)}</h2>
                  {a.lookalike_of && (
                    <p class="warning small">
                      Its name looks like “{inert(a.lookalike_of.name)}”, registered earlier.
                    </p>
                  )}
                </div>
                <button
                  type="button"
                  class="plain"
                  disabled={busy !== null}
                  onClick={() =>
                    a.paused
                      ? run(a.client_id, () => api.resume(a.client_id), `${inert(a.name)} is resumed.`)
                      : run(a.client_id, () => api.pause(a.client_id), `${inert(a.name)} is paused: its calls are refused.`)
                  }
                  data-testid="pause-agent"
                >
                  {a.paused ? 'Resume' : 'Pause'}
                </button>
                <button
                  type="button"
                  class="danger plain"
                  disabled={busy !== null || a.grants.length === 0}
                  onClick={() => run(a.client_id, () => api.revokeAgent(a.client_id), `${inert(a.name)} is revoked.`)}
                  data-testid="revoke-agent"
                >
                  {busy === a.client_id ? 'Revoking…' : 'Revoke'}
                </button>
              </header>
              <p class="meta">
                First seen {ago(a.first_seen, now)} · last seen {ago(a.last_seen, now)}
                {hosts.length > 0 && <> · redirects to {inert(hosts.join(', '))}</>}
              </p>
              <p class="meta mono" title="Client ID">
                {inert(a.client_id)}
              </p>
              <p class="meta" title="The program that registered it, as Gatehouse saw it" data-testid="agent-program">
                Program: <code>{programText(a.program)}</code>
              </p>
              {a.grants.length === 0 ? (
                <p class="muted">No access in force.</p>
              ) : (
                <ul class="grants">
                  {a.grants.map((g) => (
                    <li key={g.id} class="grant" data-grant={g.id}>
                      <div>
                        <strong>{inert(g.server)}</strong> <span class="muted">· {grantLifetime(g, now)}</span>
                        <ul class="tool-chips">
                          {g.tools.map((t) =>
                            g.ask_tools.includes(t) ? (
                              <li key={t} class="ask" title="Each call waits for your decision">
                                {inert(t)} · asks
                              </li>
                            ) : (
                              <li key={t}>{inert(t)}</li>
                            ),
                          )}
                        </ul>
                      </div>
                      <label class="small ask-more" title="It sees the tools it was not granted, marked; calling one asks you">
                        <input
                          type="checkbox"
                          checked={g.may_ask_more}
                          disabled={busy !== null}
                          onChange={() =>
                            run(
                              `${g.id}-more`,
                              () => api.setMayAskMore(g.id, !g.may_ask_more),
                              g.may_ask_more
                                ? `${inert(a.name)} sees only what it was granted on ${inert(g.server)}.`
                                : `${inert(a.name)} may ask for more tools on ${inert(g.server)}.`,
                            )
                          }
                          data-testid="may-ask-more"
                        />
                        May ask for more
                      </label>
                      <button
                        type="button"
                        class="plain small"
                        disabled={busy !== null}
                        onClick={() => run(g.id, () => api.revokeGrant(g.id), `Access to ${g.server} revoked.`)}
                      >
                        {busy === g.id ? 'Revoking…' : 'Revoke'}
                      </button>
                    </li>
                  ))}
                </ul>
              )}
            </article>
          );
        })}
      </div>
    </section>
  );
}
