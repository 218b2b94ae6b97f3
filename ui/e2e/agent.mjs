// A real MCP client (the official TypeScript SDK) that the e2e tests drive
// line by line. It plays the browser too: it opens /authorize without
// following redirects, polls the waiting page until the person decides in the
// consent window, then exchanges the code through the SDK.
//
// Usage: node agent.mjs <mcp-url> <client-name>
// (AGENT_CLIENT_ID and AGENT_REDIRECT_URI: a client registered beforehand,
// as a client that keeps its registration would be, instead of registering.)
// stdout: one JSON event per line: authorize, waiting_page, denied, connected,
//   tools {names}, call {tool, ok, status, error?}, error.
// stdin:  one JSON command per line: {"call": "name", "args": {...}} | {"exit": true}
//   | {"until_refused": "name", "args": {...}}: calls back to back until one is
//     refused (at most 30 s); emits `calling` after the first call that
//     succeeds, then `refused {calls: [{start, end, ok}...]}` (times in ms on the
//     wall clock, `performance.timeOrigin + performance.now()`).

import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const [url, name] = process.argv.slice(2);
const redirectUri = process.env.AGENT_REDIRECT_URI ?? `http://127.0.0.1:${20000 + (process.pid % 20000)}/callback`;
let lastStatus = null;
let mayAuthorize = true;

// The browser: /authorize → waiting page → (the person decides) → redirect_uri?code|error.
async function browse(authorizationUrl) {
  let next = new URL(authorizationUrl);
  let announced = false;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const res = await fetch(next, { redirect: 'manual' });
    await res.text();
    if (res.status >= 300 && res.status < 400) {
      const location = new URL(res.headers.get('location'), next);
      if (location.href.startsWith(redirectUri)) return location.searchParams;
      next = location;
      continue;
    }
    if (res.status !== 200) throw new Error(`authorization page answered ${res.status}`);
    if (!announced) emit('waiting_page', { path: next.pathname });
    announced = true;
    if (Date.now() > deadline) throw new Error('nobody decided');
    await sleep(150);
  }
}

const provider = {
  info: process.env.AGENT_CLIENT_ID ? { client_id: process.env.AGENT_CLIENT_ID, redirect_uris: [redirectUri] } : undefined,
  tokensValue: undefined,
  verifier: undefined,
  authorization: undefined,
  get redirectUrl() {
    return redirectUri;
  },
  get clientMetadata() {
    return {
      client_name: name,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  state: () => randomBytes(16).toString('hex'),
  clientInformation() {
    return this.info;
  },
  saveClientInformation(info) {
    this.info = info;
  },
  tokens() {
    return this.tokensValue;
  },
  saveTokens(t) {
    this.tokensValue = t;
  },
  saveCodeVerifier(v) {
    this.verifier = v;
  },
  codeVerifier() {
    return this.verifier;
  },
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') this.tokensValue = undefined;
  },
  redirectToAuthorization(authorizationUrl) {
    // After the first authorization, a 401 must surface as such (no new consent request).
    if (!mayAuthorize) return;
    emit('authorize', { at: Date.now() });
    this.authorization = browse(authorizationUrl.href);
  },
};

const recordingFetch = async (input, init) => {
  const res = await fetch(input, init);
  if (String(input).startsWith(url)) lastStatus = res.status;
  return res;
};

async function connect() {
  const attempt = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recordingFetch });
    const client = new Client({ name, version: '1.0.0' });
    try {
      await client.connect(transport);
      return { client };
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
      return { transport };
    }
  };
  let { client, transport } = await attempt();
  if (client) return client;
  const params = await provider.authorization;
  if (params.get('error')) {
    emit('denied', { error: params.get('error') });
    return null;
  }
  await transport.finishAuth(params.get('code'));
  ({ client } = await attempt());
  if (!client) throw new Error('still unauthorized after the code exchange');
  return client;
}

const now = () => performance.timeOrigin + performance.now();

async function untilRefused(client, tool, args) {
  const calls = [];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const start = now();
    let ok;
    try {
      ok = !(await client.callTool({ name: tool, arguments: args })).isError;
    } catch {
      ok = false;
    }
    calls.push({ start, end: now(), ok });
    if (calls.length === 1 && ok) emit('calling');
    if (!ok) break;
  }
  emit('refused', { calls });
}

async function main() {
  const client = await connect();
  mayAuthorize = false;
  if (!client) return;
  // The server's instructions as the agent is told them (what its model would read).
  emit('connected', { instructions: client.getInstructions() ?? null });
  const { tools } = await client.listTools();
  emit('tools', { names: tools.map((t) => t.name) });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const cmd = JSON.parse(line);
    if (cmd.exit) break;
    if (cmd.reconnect) {
      // A new session with the same token: what the agent is told as it opens.
      const again = await connect();
      emit('reconnected', { instructions: again?.getInstructions() ?? null });
      await again?.close().catch(() => {});
      continue;
    }
    if (cmd.until_refused) {
      await untilRefused(client, cmd.until_refused, cmd.args ?? {});
      continue;
    }
    if (cmd.call) {
      lastStatus = null;
      try {
        const result = await client.callTool({ name: cmd.call, arguments: cmd.args ?? {} });
        emit('call', { tool: cmd.call, ok: !result.isError, status: lastStatus });
      } catch (e) {
        emit('call', {
          tool: cmd.call,
          ok: false,
          status: lastStatus,
          unauthorized: e instanceof UnauthorizedError,
          error: String(e?.message ?? e),
        });
      }
    }
  }
  lines.close();
  await client.close().catch(() => {});
}

main().then(
  () => {
    emit('done');
    process.exit(0);
  },
  (e) => {
    emit('error', { message: String(e?.stack ?? e) });
    process.exit(1);
  },
);
