// The consent window: one question at a time. Who asks, for which server,
// which tools (grouped by risk), for how long; Allow (after a second) or Deny.

import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import '../styles/base.css';
import '../styles/consent.css';
import { reportFatalErrors } from '../lib/fatal';
import { inert, inertJson } from '../lib/inert';
import { programText } from '../lib/format';
import { api, errorCode, errorMessage, on } from '../api';
import type { PendingItem, Settings } from '../bindings';
import { applyTheme } from '../lib/theme';
import {
  ALLOW_DELAY_MS,
  DURATIONS,
  allowEnabled,
  approvalFor,
  askSentence,
  buttonLabels,
  countdown,
  currentRequest,
  defaultAsking,
  defaultSelection,
  groupState,
  groupTools,
  identityBadge,
  picksTools,
  toggleGroup,
  toggleTool,
  toolsToSend,
  type Duration,
} from '../lib/consent';

function useNow(intervalMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(t);
  }, [intervalMs]);
  return now;
}

function ConsentApp() {
  const [queue, setQueue] = useState<PendingItem[] | null>(null);
  const [showingId, setShowingId] = useState<string | null>(null);
  // Undefined while loading (the window's defaults come from it), null if it could not be read.
  const [settings, setSettings] = useState<Settings | null | undefined>(undefined);
  useEffect(() => {
    api.settings().then((s) => {
      applyTheme(s.theme);
      setSettings(s);
    }, () => setSettings(null));
  }, []);
  useEffect(() => {
    let live = true;
    const unlisten = on.pendingChanged((p) => live && setQueue(p));
    api.pending().then((p) => live && setQueue(p));
    return () => {
      live = false;
      unlisten.then((f) => f());
    };
  }, []);
  const request = queue ? currentRequest(queue, showingId) : null;
  useEffect(() => {
    if (request && request.id !== showingId) setShowingId(request.id);
  }, [request?.id]);
  // A request that times out is a denial; ask for the queue again when it does.
  useEffect(() => {
    if (!request || request.expires_at === null) return;
    const t = setTimeout(() => api.pending().then(setQueue), Math.max(0, request.expires_at - Date.now()) + 500);
    return () => clearTimeout(t);
  }, [request?.id, request?.expires_at]);
  if (queue === null || settings === undefined) return <main class="consent" aria-busy="true" />;
  if (!request) {
    return (
      <main class="consent consent-empty">
        <p>Nothing is waiting for your decision.</p>
      </main>
    );
  }
  const position = queue.findIndex((r) => r.id === request.id);
  return (
    <Prompt key={request.id} request={request} position={position} waiting={queue.length} settings={settings} />
  );
}

function Prompt({
  request,
  position,
  waiting,
  settings,
}: {
  request: PendingItem;
  position: number;
  waiting: number;
  settings: Settings | null;
}) {
  const groups = useMemo(() => groupTools(request.tools), [request]);
  const [selected, setSelected] = useState(() => defaultSelection(request.tools, request.rule_choices));
  const [asking, setAsking] = useState(() =>
    defaultAsking(request.tools, settings?.ask_every_time ?? 'destructive', request.rule_choices),
  );
  const [remember, setRemember] = useState(false);
  const [duration, setDuration] = useState<Duration>(settings?.default_duration ?? 'forever');
  const [askForMore, setAskForMore] = useState(false);
  const [shownAt, setShownAt] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const now = useNow(250);
  const heading = useRef<HTMLHeadingElement>(null);
  const picking = picksTools(request.kind);

  // The Allow delay starts once the request is painted on screen: the window
  // is kept hidden between requests, so a request painted while it is hidden
  // counts from when the window shows (and again after it was hidden).
  useEffect(() => {
    let frame = 0;
    const onScreen = () => {
      cancelAnimationFrame(frame);
      if (document.visibilityState !== 'visible') {
        setShownAt(null);
        return;
      }
      frame = requestAnimationFrame(() => {
        setShownAt(Date.now());
        api.consentShown(request.id).catch(() => {});
        heading.current?.focus();
      });
    };
    onScreen();
    document.addEventListener('visibilitychange', onScreen);
    return () => {
      cancelAnimationFrame(frame);
      document.removeEventListener('visibilitychange', onScreen);
    };
  }, [request.id]);

  const tools = toolsToSend(request, selected);
  const canAllow = allowEnabled(shownAt, now, picking ? tools.length : null) && !busy;
  const delayLeft = shownAt === null ? ALLOW_DELAY_MS : Math.max(0, ALLOW_DELAY_MS - (now - shownAt));
  const labels = buttonLabels(request.kind, tools.length);
  const expired = request.expires_at !== null && now >= request.expires_at;

  const decide = async (allow: boolean) => {
    if (busy) return;
    if (allow && !canAllow) return;
    setBusy(true);
    setError(null);
    try {
      if (allow) await api.approve(request.id, approvalFor(request, selected, duration, { asking, askForMore, remember }));
      else await api.deny(request.id);
      // The window moves to the next request (or closes) when the core reports the change.
    } catch (e) {
      const code = errorCode(e);
      setError(
        code === 'not_found'
          ? 'This request was already decided or has expired.'
          : code === 'too_soon'
            ? 'Take a second to read the request, then choose again.'
            : errorMessage(e),
      );
      setBusy(false);
    }
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        decide(false);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  const badge = identityBadge(request);
  const sentence = askSentence(request);
  return (
    <main class="consent" aria-labelledby="consent-title" data-kind={request.kind}>
      <header class="consent-head">
        {waiting > 1 && (
          <p class="queue" aria-live="polite">
            Request {position + 1} of {waiting}
          </p>
        )}
        {/* The badge comes first: no name, however long, can push it out of sight. */}
        <span class={`badge ${badge.tone}`} data-testid="identity">
          {badge.text}
        </span>
        <h1 id="consent-title" ref={heading} tabIndex={-1} class="agent-name">
          {inert(request.client_name)}
        </h1>
        <p class="ask">
          {sentence.before}
          <strong data-testid="server">{inert(request.server)}</strong>
          {sentence.after}
        </p>
        <p
          class="program small"
          data-testid="program"
          title="What Gatehouse saw on the other end of the connection; the name above is what the agent says about itself"
        >
          <span class="muted">Program: </span>
          <code>{programText(request.program)}</code>
        </p>
        {request.lookalike_of && (
          <p class="warning" data-testid="lookalike">
            Its name looks like “{inert(request.lookalike_of.name)}”, another agent registered earlier. Make sure
            this is the program you think it is.
          </p>
        )}
        {badge.tone === 'unverified' && request.kind === 'authorization' && (
          <p class="warning">
            Any program can call itself “{inert(request.client_name)}”. Allow only if you just started it.
          </p>
        )}
        {request.kind === 'step_up' && request.granted_tools.length > 0 && (
          <p class="small muted">It already has: {inert(request.granted_tools.join(', '))}.</p>
        )}
      </header>

      {picking ? (
        <section class="tool-groups" aria-label="Tools">
          {groups.map((g) => {
            const state = groupState(g, selected);
            return (
              <fieldset class={`group risk-${g.risk}`} key={g.risk} data-risk={g.risk}>
                <legend>
                  <label class="group-label">
                    <input
                      type="checkbox"
                      checked={state === 'all'}
                      indeterminate={state === 'some'}
                      onChange={() => setSelected(toggleGroup(g, selected))}
                      data-testid={`group-${g.risk}`}
                    />
                    <span class="group-title">{g.title}</span>
                    <span class="group-hint">{g.hint}</span>
                  </label>
                </legend>
                {g.tools.map((t) => (
                  <div class="tool-row" key={t.name}>
                    <label class="tool" title={inert(t.description)}>
                      <input
                        type="checkbox"
                        checked={selected.has(t.name)}
                        onChange={() => setSelected(toggleTool(t.name, selected))}
                        data-tool={t.name}
                      />
                      <span class="tool-text">
                        <span class="tool-title">
                          {inert(t.title ?? t.name)}
                          {t.title && <code class="tool-name">{inert(t.name)}</code>}
                        </span>
                        <span class="tool-desc">{inert(t.description)}</span>
                      </span>
                    </label>
                    {selected.has(t.name) && (
                      <label class="asks" title="Each call waits for you to allow it">
                        <input
                          type="checkbox"
                          checked={asking.has(t.name)}
                          onChange={() => setAsking(toggleTool(t.name, asking))}
                          data-ask-tool={t.name}
                        />
                        asks each call
                      </label>
                    )}
                  </div>
                ))}
                {g.risk === 'destructive' && <p class="group-note">Each call of these asks you again.</p>}
              </fieldset>
            );
          })}
        </section>
      ) : (
        <section class="tool-groups single" aria-label="Details">
          {request.tools.map((t) => (
            <div class={`one-tool risk-${t.risk}`} key={t.name}>
              <span class="tool-title">
                {inert(t.title ?? t.name)}
                {t.title && <code class="tool-name">{inert(t.name)}</code>}
              </span>
              {t.description && <span class="tool-desc">{inert(t.description)}</span>}
            </div>
          ))}
          {request.kind === 'tool_call' && <Arguments request={request} />}
          {(request.kind === 'tool_changed' || request.kind === 'instructions_changed') && (
            <>
              <h3>What changed</h3>
              <ul class="changes">
                {request.changes.map((c, i) => (
                  <li key={i}>{inert(c)}</li>
                ))}
              </ul>
              {request.kind === 'instructions_changed' && (
                <p class="group-note">
                  The agent&apos;s model reads a server&apos;s instructions. Until you allow these, it keeps the
                  ones it had.
                </p>
              )}
            </>
          )}
        </section>
      )}

      {picking && request.instructions !== null && (
        <section class="instructions" data-testid="instructions" aria-label="The server's instructions">
          <h3>What {inert(request.server)} tells the agent&apos;s model</h3>
          <div class="instructions-text">
            {request.instructions.split('\n').map((line, i) => (
              <p key={i}>{inert(line)}</p>
            ))}
          </div>
        </section>
      )}

      {request.kind === 'authorization' && (
        <fieldset class="durations" role="radiogroup">
          <legend>For how long</legend>
          {DURATIONS.map((d) => (
            <label key={d.value} class={duration === d.value ? 'on' : ''}>
              <input
                type="radio"
                name="duration"
                value={d.value}
                checked={duration === d.value}
                onChange={() => setDuration(d.value)}
              />
              {d.label}
            </label>
          ))}
        </fieldset>
      )}

      {picking && (
        <div class="extras">
          <label class="ask-more small" title="Next time this agent asks for these tools, the same answer, without a window">
            <input type="checkbox" checked={remember} onChange={() => setRemember(!remember)} data-testid="remember" />
            Remember for this agent
          </label>
          {request.kind === 'authorization' && (
            <label class="ask-more small" title="It sees the tools it was not granted, marked; calling one asks you">
              <input
                type="checkbox"
                checked={askForMore}
                onChange={() => setAskForMore(!askForMore)}
                data-testid="ask-for-more"
              />
              Let it ask for more tools
            </label>
          )}
        </div>
      )}

      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}

      <footer class="consent-foot">
        <p class="small">
          {request.redirect_host && (
            <>
              Redirects to <strong data-testid="redirect-host">{inert(request.redirect_host)}</strong>.{' '}
            </>
          )}
          {request.phrase && (
            <>
              Match phrase{' '}
              <strong class="phrase" data-testid="phrase">
                {request.phrase}
              </strong>{' '}
              (also shown in your browser).{' '}
            </>
          )}
          {request.expires_at !== null &&
            (expired ? 'Timed out: denied.' : `Denied on its own in ${countdown(request.expires_at, now)}.`)}
        </p>
        <div class="buttons">
          <button type="button" class="plain" onClick={() => decide(false)} disabled={busy} data-testid="deny">
            {labels.deny}
          </button>
          <button
            type="button"
            class="primary allow"
            onClick={() => decide(true)}
            disabled={!canAllow || expired}
            data-testid="allow"
            aria-describedby={delayLeft > 0 ? 'allow-wait' : undefined}
          >
            {labels.allow}
            {delayLeft > 0 && <span class="delay" style={{ width: `${(delayLeft / ALLOW_DELAY_MS) * 100}%` }} />}
          </button>
          {delayLeft > 0 && (
            <span id="allow-wait" class="sr-only">
              Allow is available in a moment.
            </span>
          )}
        </div>
      </footer>
    </main>
  );
}

/** A held call's arguments: what it acts on first, cuts said plainly, everything one click away. */
function Arguments({ request }: { request: PendingItem }) {
  const cut = request.argument_fields.some((f) => f.cut > 0);
  return (
    <>
      <h3>Arguments</h3>
      {request.argument_fields.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <dl class="arguments" data-testid="argument-fields">
          {request.argument_fields.map((f) => (
            <div key={f.name} class={f.required ? 'required' : ''}>
              <dt>
                {inert(f.name)}
                {f.required && <span class="small muted"> (what it acts on)</span>}
              </dt>
              <dd>
                <code>{inert(f.preview)}</code>
                {f.cut > 0 && <span class="cut"> … {f.cut.toLocaleString()} more characters not shown here</span>}
              </dd>
            </div>
          ))}
        </dl>
      )}
      <details class="all-arguments" open={!cut && request.argument_fields.length <= 1}>
        <summary>{cut ? 'Some arguments are long: show them all' : 'Show the arguments as JSON'}</summary>
        <pre class="json" data-testid="arguments">
          {inertJson(request.arguments ?? {})}
        </pre>
      </details>
    </>
  );
}

reportFatalErrors();
render(<ConsentApp />, document.getElementById('app')!);
