// Servers: the fronted MCP servers, the URL to give an AI client (with a copy
// button), and their tools with risk classes; and the AI clients found on
// this machine, whose servers one click puts behind Gatehouse (after a preview).

import { useEffect, useState } from 'preact/hooks';
import { api, errorMessage } from '../api';
import type { ConnectFound, ConnectPreview, Server, Tool } from '../bindings';
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
  useEffect(() => {
    api.servers().then(setServers);
  }, []);
  return (
    <section class="servers" aria-label="Servers">
      <header class="view-head">
        <h1>Servers</h1>
      </header>
      <p class="muted intro">
        Give an AI client the URL of a server. Gatehouse asks you before the client gets any of its tools. Servers are
        set in the config file (<code>~/.config/gatehouse/gatehouse.toml</code>, or <code>--config</code>); the built-in
        demo server runs when there is none.
      </p>
      <div class="cards">
        {servers?.map((s) => <ServerCard key={s.name} server={s} />)}
      </div>
      <ConnectClients />
    </section>
  );
}

/** The AI clients found here: preview, then apply, putting their servers behind Gatehouse. */
function ConnectClients() {
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
      await load();
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

function ServerCard({ server }: { server: Server }) {
  const [tools, setTools] = useState<Tool[] | null>(server.tools);
  const [copied, setCopied] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const doCopy = async (what: string, text: string) => {
    if (await copy(text)) {
      setCopied(what);
      setTimeout(() => setCopied(null), 1500);
    }
  };
  const listTools = async () => {
    setLoading(true);
    setError(null);
    try {
      setTools(await api.serverTools(server.name));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setLoading(false);
    }
  };
  return (
    <article class="card" data-server={server.name} aria-label={server.name}>
      <header>
        <div>
          <h2>{server.name}</h2>
          {server.description && <p class="muted">{inert(server.description)}</p>}
        </div>
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
      {tools ? (
        <div class="server-tools">
          {groupTools(tools).map((g) => (
            <div key={g.risk} class={`risk-${g.risk}`}>
              <span class="group-title">{g.title}</span>
              <ul class="tool-chips">
                {g.tools.map((t) => (
                  <li key={t.name} title={inert(t.description)}>
                    {inert(t.name)}
                  </li>
                ))}
              </ul>
            </div>
          ))}
        </div>
      ) : (
        <button type="button" class="plain small" onClick={listTools} disabled={loading}>
          {loading ? 'Asking the server…' : 'Show its tools'}
        </button>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </article>
  );
}
