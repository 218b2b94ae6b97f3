// Servers: the fronted MCP servers, the URL to give an AI client (with a copy
// button), and their tools with risk classes.

import { useEffect, useState } from 'preact/hooks';
import { api, errorMessage } from '../api';
import type { Server, Tool } from '../bindings';
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
        set in the config file (<code>--config</code>); the built-in demo server runs when there is none.
      </p>
      <div class="cards">
        {servers?.map((s) => <ServerCard key={s.name} server={s} />)}
      </div>
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
