// Servers: the fronted MCP servers, the URL to give an AI client (with a copy
// button), and their tools with risk classes; and the AI clients found on
// this machine, whose servers one click puts behind Gatehouse (after a preview).

import { useEffect, useState } from 'preact/hooks';
import { api, errorMessage } from '../api';
import type { ConfigChange, ConnectFound, ConnectPreview, NewServer, Server, ServerState, Tool } from '../bindings';
import { groupTools } from '../lib/consent';
import { inert } from '../lib/inert';

async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Fallback for webviews without the async clipboard.
    const area = document.createElement('textarea');
    area.value = text;
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

export function Servers() {
  const [servers, setServers] = useState<Server[] | null>(null);
  const [adding, setAdding] = useState(false);
  const [said, setSaid] = useState<string | null>(null);
  const load = () => api.servers().then(setServers);
  useEffect(() => {
    load();
    const timer = setInterval(load, 3000);
    return () => clearInterval(timer);
  }, []);
  const changed = (change: ConfigChange) => {
    setSaid(describeChange(change));
    load();
  };
  return (
    <section class="servers" aria-label="Servers">
      <header class="view-head">
        <h1>Servers</h1>
        <button type="button" class="primary" data-testid="add-server" onClick={() => setAdding(!adding)}>
          {adding ? 'Close' : 'Add a server'}
        </button>
      </header>
      <p class="muted intro">
        Give an AI client the URL of a server. Gatehouse asks you before the client gets any of its tools. Changes here
        are written to the config file (shown in Settings) and take effect at once.
      </p>
      {adding && (
        <AddServer
          onAdded={(change) => {
            setAdding(false);
            changed(change);
          }}
        />
      )}
      {said && (
        <p class="ok" role="status" data-testid="server-change">
          {inert(said)}
        </p>
      )}
      <div class="cards">
        {servers?.map((s) => <ServerCard key={s.name} server={s} onChange={changed} onReload={load} />)}
      </div>
      <ConnectClients onConnected={load} />
    </section>
  );
}

/** What a change of the config did, in one sentence. */
export function describeChange(c: ConfigChange): string {
  const parts: string[] = [];
  if (c.added.length) parts.push(`added ${c.added.join(', ')}`);
  if (c.changed.length) parts.push(`changed ${c.changed.join(', ')} (sessions restarted)`);
  if (c.removed.length) parts.push(`removed ${c.removed.join(', ')} (sessions ended, grants revoked)`);
  if (c.disabled.length) parts.push(`disabled ${c.disabled.join(', ')} (grants kept)`);
  if (c.after_restart.length) parts.push(`after a restart: ${c.after_restart.join(', ')}`);
  return parts.length ? `Done: ${parts.join('; ')}.` : 'Done: nothing changed.';
}

function stateText(state: ServerState): string {
  switch (state.state) {
    case 'not_started':
      return 'Not started (it starts with the first agent session)';
    case 'idle':
      return 'Idle';
    case 'running':
      return `Running, ${state.sessions} session(s)`;
    case 'crashed':
      return 'Crashed';
    case 'held_back':
      return `Held back after repeated crashes (next try in ${state.seconds} s)`;
    case 'disabled':
      return 'Disabled';
    case 'needs_login':
      return `Needs you to log in (${state.reason})`;
  }
}

function ServerCard({
  server,
  onChange,
  onReload,
}: {
  server: Server;
  onChange: (c: ConfigChange) => void;
  onReload: () => void;
}) {
  const [tools, setTools] = useState<Tool[] | null>(server.tools);
  const [copied, setCopied] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [logs, setLogs] = useState<string[] | null>(null);
  useEffect(() => setTools(server.tools ?? tools), [server.tools]);
  const doCopy = async (what: string, text: string) => {
    if (await copy(text)) {
      setCopied(what);
      setTimeout(() => setCopied(null), 1500);
    }
  };
  const run = async (f: () => Promise<void>) => {
    setLoading(true);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setLoading(false);
    }
  };
  const listTools = () => run(async () => setTools(await api.serverTools(server.name)));
  const disabled = server.state.state === 'disabled';
  const holders = new Map(server.holders.map((h) => [h.tool, h.agents]));
  const lastWords =
    server.state.state === 'crashed' || server.state.state === 'held_back' ? server.state.stderr : [];
  return (
    <article class="card" data-server={server.name} aria-label={server.name}>
      <header>
        <div>
          <h2>{server.name}</h2>
          {server.description && <p class="muted">{inert(server.description)}</p>}
        </div>
        <span class={`chip state-${server.state.state}`} data-testid="server-state">
          {stateText(server.state)}
        </span>
      </header>
      <div class="copy-row">
        <code class="url">{server.url}</code>
        <button type="button" class="plain small" onClick={() => doCopy('url', server.url)}>
          {copied === 'url' ? 'Copied' : 'Copy URL'}
        </button>
      </div>
      <p class="meta">
        {server.transport === 'stdio' ? 'Runs ' : 'Forwards to '}
        <code>{inert(server.target)}</code>
      </p>
      {lastWords.length > 0 && <pre class="stderr">{lastWords.map((l) => `${inert(l)}\n`).join('')}</pre>}
      {tools ? (
        <div class="server-tools">
          {groupTools(tools).map((g) => (
            <div key={g.risk} class={`risk-${g.risk}`}>
              <span class="group-title">{g.title}</span>
              <ul class="tool-chips">
                {g.tools.map((t) => (
                  <li key={t.name} title={inert(t.description)}>
                    {inert(t.name)}
                    {holders.has(t.name) && (
                      <span class="holders"> · {holders.get(t.name)!.map((a) => inert(a)).join(', ')}</span>
                    )}
                  </li>
                ))}
              </ul>
            </div>
          ))}
        </div>
      ) : (
        !disabled && (
          <button type="button" class="plain small" data-testid="show-tools" onClick={listTools} disabled={loading}>
            {loading ? 'Asking the server…' : 'Show its tools'}
          </button>
        )
      )}
      {server.transport === 'http' && <Login server={server} onChange={onReload} />}
      <Secrets server={server} onChange={onReload} />
      <div class="detail-actions">
        {!disabled && (
          <button type="button" class="plain small" disabled={loading} onClick={() => run(async () => {
            await api.serverRestart(server.name);
            setTools(null);
            onReload();
          })}>
            Restart
          </button>
        )}
        <button
          type="button"
          class="plain small"
          disabled={loading}
          onClick={() => run(async () => onChange(await api.serverSetEnabled(server.name, disabled)))}
        >
          {disabled ? 'Enable' : 'Disable'}
        </button>
        <button
          type="button"
          class="plain small"
          onClick={() => run(async () => setLogs(logs ? null : await api.serverLogs(server.name, 50)))}
        >
          {logs ? 'Hide logs' : 'Logs'}
        </button>
        <button
          type="button"
          class="plain small danger"
          disabled={loading}
          onClick={() => {
            if (confirm(`Remove ${server.name}? Its sessions end and every grant on it is revoked.`)) {
              run(async () => onChange(await api.serverRemove(server.name)));
            }
          }}
        >
          Remove
        </button>
      </div>
      {logs && (
        <pre class="stderr" data-testid="server-logs">
          {logs.length ? logs.map((l) => `${inert(l)}\n`).join('') : 'Nothing written to stderr since Gatehouse started.'}
        </pre>
      )}
      {error && (
        <p class="error" role="alert">
          {inert(error)}
        </p>
      )}
    </article>
  );
}

/** A remote server's login: Gatehouse's own, done once in the browser. */
function Login({ server, onChange }: { server: Server; onChange: () => void }) {
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const needs = server.state.state === 'needs_login';
  const login = async () => {
    setError(null);
    try {
      setUrl(await api.serverLogin(server.name));
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  return (
    <div class="login" data-testid="server-login">
      {server.logged_in && !needs ? (
        <p>
          Gatehouse is logged in to this server.{' '}
          <button type="button" class="plain small" onClick={() => api.serverLogout(server.name).then(onChange)}>
            Log out
          </button>
        </p>
      ) : (
        <p>
          {needs ? <strong>This server needs you to log in. </strong> : 'If this server asks for a login: '}
          <button type="button" class={needs ? 'primary small' : 'plain small'} onClick={login}>
            Log in
          </button>
        </p>
      )}
      {url && !server.login_error && (
        <p class="muted">
          Log in in the browser window that opened (or open <code>{inert(url)}</code>). Gatehouse keeps the login in the
          keychain; agents never see it.
        </p>
      )}
      {server.login_error && <p class="error">The last login failed: {inert(server.login_error)}</p>}
      {error && <p class="error">{inert(error)}</p>}
    </div>
  );
}

/** A server's secrets: names only; a value is typed once and goes to the keychain. */
function Secrets({ server, onChange }: { server: Server; onChange: () => void }) {
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const save = async (key: string, v: string) => {
    setError(null);
    try {
      await api.serverSecretSet(server.name, key, v);
      setName('');
      setValue('');
      onChange();
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  return (
    <div class="secrets" data-testid="server-secrets">
      <span class="group-title">Secrets</span>
      <ul>
        {server.secrets.map((s) => (
          <li key={s}>
            <code>{inert(s)}</code>{' '}
            <button type="button" class="plain small" onClick={() => setName(s)}>
              Replace
            </button>{' '}
            <button
              type="button"
              class="plain small"
              onClick={() => api.serverSecretRemove(server.name, s).then(onChange, (e) => setError(errorMessage(e)))}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      <form
        class="secret-form"
        onSubmit={(e) => {
          e.preventDefault();
          save(name, value);
        }}
      >
        <input placeholder="NAME" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <input
          type="password"
          placeholder="value (kept in the keychain)"
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <button type="submit" class="plain small" disabled={!name || !value}>
          Save
        </button>
      </form>
      {error && <p class="error">{inert(error)}</p>}
    </div>
  );
}

/** KEY=VALUE lines. */
function pairs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

/** The form that adds a server: a command (stdio) or a URL, with its settings and secrets. */
function AddServer({ onAdded }: { onAdded: (c: ConfigChange) => void }) {
  const [kind, setKind] = useState<'stdio' | 'http'>('stdio');
  const [name, setName] = useState('');
  const [command, setCommand] = useState('');
  const [args, setArgs] = useState('');
  const [url, setUrl] = useState('');
  const [settings, setSettings] = useState('');
  const [secretKey, setSecretKey] = useState('');
  const [secretValue, setSecretValue] = useState('');
  const [prefix, setPrefix] = useState('');
  const [description, setDescription] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const field = (set: (v: string) => void) => (e: Event) => set((e.target as HTMLInputElement).value);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const header = kind === 'http';
    const server: NewServer = {
      name: name.trim(),
      command: kind === 'stdio' ? command.trim() : null,
      args: kind === 'stdio' ? args.split('\n').map((a) => a.trim()).filter((a) => a) : [],
      url: kind === 'http' ? url.trim() : null,
      env: kind === 'stdio' ? pairs(settings) : {},
      headers: kind === 'http' ? pairs(settings) : {},
      secrets: secretKey && secretValue ? [{ key: secretKey.trim(), value: secretValue, header, prefix }] : [],
      description: description.trim() || null,
      start_at_launch: false,
    };
    try {
      onAdded(await api.serverAdd(server));
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="add-server card" onSubmit={submit} data-testid="add-server-form">
      <h2>Add a server</h2>
      <label>
        Name <input name="name" required value={name} onInput={field(setName)} placeholder="notes" />
      </label>
      <fieldset>
        <label>
          <input type="radio" name="kind" checked={kind === 'stdio'} onChange={() => setKind('stdio')} /> A command
          (stdio)
        </label>{' '}
        <label>
          <input type="radio" name="kind" checked={kind === 'http'} onChange={() => setKind('http')} /> A URL (remote)
        </label>
      </fieldset>
      {kind === 'stdio' ? (
        <>
          <label>
            Command <input name="command" required value={command} onInput={field(setCommand)} placeholder="npx" />
          </label>
          <label>
            Arguments, one per line
            <textarea name="args" rows={3} value={args} onInput={field(setArgs)} />
          </label>
          <label>
            Environment, KEY=VALUE per line
            <textarea name="settings" rows={2} value={settings} onInput={field(setSettings)} />
          </label>
        </>
      ) : (
        <>
          <label>
            URL <input name="url" required value={url} onInput={field(setUrl)} placeholder="https://mcp.example.com/mcp" />
          </label>
          <label>
            Headers, NAME=VALUE per line
            <textarea name="settings" rows={2} value={settings} onInput={field(setSettings)} />
          </label>
        </>
      )}
      <div class="secret-form">
        <input
          name="secret-key"
          placeholder={kind === 'stdio' ? 'secret variable, e.g. API_KEY' : 'secret header, e.g. Authorization'}
          value={secretKey}
          onInput={field(setSecretKey)}
        />
        {kind === 'http' && <input name="secret-prefix" placeholder='prefix, e.g. "Bearer "' value={prefix} onInput={field(setPrefix)} />}
        <input
          name="secret-value"
          type="password"
          placeholder="its value (kept in the keychain)"
          value={secretValue}
          onInput={field(setSecretValue)}
        />
      </div>
      <label>
        Description <input name="description" value={description} onInput={field(setDescription)} />
      </label>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Adding…' : 'Add'}
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {inert(error)}
        </p>
      )}
    </form>
  );
}

/**
 * The AI clients found here: preview, then apply, putting their servers behind Gatehouse
 * (`onConnected`: Gatehouse's servers changed).
 */
function ConnectClients({ onConnected }: { onConnected: () => Promise<unknown> }) {
  const [found, setFound] = useState<ConnectFound[] | null>(null);
  const [preview, setPreview] = useState<ConnectPreview | null>(null);
  const [moveSecrets, setMoveSecrets] = useState(true);
  const [done, setDone] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const load = () => api.connectClients().then(setFound);
  useEffect(() => {
    load();
  }, []);
  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  const show = (client: string, move = moveSecrets) =>
    run(async () => {
      setDone(null);
      setPreview(await api.connectPreview(client, move));
    });
  const apply = (client: string) =>
    run(async () => {
      setDone(await api.connectApply(client, moveSecrets));
      setPreview(null);
      await Promise.all([onConnected(), load()]);
    });
  const present = found?.filter((f) => f.exists) ?? [];
  return (
    <section class="connect" aria-label="AI clients on this computer">
      <h2>Your AI clients</h2>
      <p class="muted intro">
        Put the MCP servers an AI client already has behind Gatehouse: its file keeps everything else, and{' '}
        <code>gatehouse disconnect</code> restores it.
      </p>
      {found && present.length === 0 && <p class="muted">No AI client's MCP configuration was found here.</p>}
      <ul class="connect-clients">
        {present.map((f) => (
          <li key={f.client} data-client={f.client}>
            <div>
              <strong>{f.title}</strong> <code class="muted">{inert(f.file)}</code>
              <ul class="connect-servers">
                {f.servers.map(([name, how]) => (
                  <li key={name}>
                    {inert(name)}: <span class="muted">{inert(how)}</span>
                  </li>
                ))}
              </ul>
              {f.error && <p class="error">{inert(f.error)}</p>}
            </div>
            <button type="button" class="plain small" disabled={busy} onClick={() => show(f.client)}>
              Preview
            </button>
          </li>
        ))}
      </ul>
      {preview && (
        <div class="connect-preview" data-testid="connect-preview">
          <h3>
            {preview.title}: {preview.servers.length} server(s) to put behind Gatehouse
          </h3>
          {preview.skipped.map(([name, why]) => (
            <p key={name} class="muted">
              Left as it is: {inert(name)} ({inert(why)})
            </p>
          ))}
          <pre class="diff">
            {preview.diff.split('\n').map((line, i) => (
              <span key={i} class={line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : undefined}>
                {inert(line)}
                {'\n'}
              </span>
            ))}
          </pre>
          {preview.secrets.length > 0 && (
            <label>
              <input
                type="checkbox"
                checked={moveSecrets}
                onChange={(e) => {
                  const move = (e.target as HTMLInputElement).checked;
                  setMoveSecrets(move);
                  show(preview.client, move);
                }}
              />{' '}
              Move the {preview.secrets.length} secret(s) found into the keychain ({preview.secrets.map(inert).join(', ')})
            </label>
          )}
          <div class="actions">
            <button type="button" class="plain" onClick={() => setPreview(null)}>
              Cancel
            </button>
            <button
              type="button"
              class="primary"
              disabled={busy || preview.servers.length === 0}
              onClick={() => apply(preview.client)}
            >
              Apply
            </button>
          </div>
        </div>
      )}
      {done && (
        <p class="ok" role="status">
          {inert(done)}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {inert(error)}
        </p>
      )}
    </section>
  );
}
