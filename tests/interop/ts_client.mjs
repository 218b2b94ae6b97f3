// An MCP client written with the official TypeScript SDK (@modelcontextprotocol/sdk),
// driven by tests/it/interop.rs. It proves that an independently written client completes
// Gatehouse's whole flow: 401 challenge, metadata discovery, dynamic registration,
// /authorize, the waiting page, the person's decision (made with the `gatehouse` CLI by
// the test), the code exchange, and then MCP calls through the gateway.
//
// The SDK's OAuthClientProvider hook `redirectToAuthorization` plays the browser: it opens
// the authorization URL without following redirects, follows Gatehouse's same-origin
// redirect to the waiting page and polls it until it redirects to our redirect_uri, where
// it reads `code` (or `error`), `state` and `iss`. Then, as the SDK documents, the app calls
// `transport.finishAuth(code)` and connects again.
//
// Usage: node ts_client.mjs <mcp-url> <client-name> [options]
//   --call NAME=JSON   call a tool with these arguments (repeatable, in order)
//   --relist           after the calls, list the tools again
//   --pause            after the calls, print {"event":"paused"}, wait for a line on
//                      stdin, then make the calls again (used to show revocation)
//   --progress         make the calls with an onprogress callback (the SDK then sends a
//                      progressToken); each notification is printed as {"event":"progress"}
//   --resources        after the calls, list the resources ({"event":"resources"})
//   --read URI         after that, read this resource ({"event":"resource_read"}; repeatable)
//   --task NAME=JSON   after the calls, call this tool as a task (MCP tasks, 1.x SDK's
//                      experimental API): {"event":"task_created"}, {"event":"task_status"}
//                      for each status seen, {"event":"task_result"}, then the session's
//                      tasks/list as {"event":"tasks"}
//   --store FILE       keep the client registration and tokens in FILE (as an app
//                      that remembers them across runs does)
// A call refused for lack of authorization (a revoked grant, a tool outside it) is
// retried once after the new authorization the SDK asks for, if the person allows it.
// Output: one JSON object per line on stdout ({"event": ...}); exit 0 unless something
// unexpected happened (then {"event":"error"} and exit 1).

import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

// MCP_TS_SDK=2 runs the same client on the 2.x SDK (@modelcontextprotocol/client).
const SDK2 = process.env.MCP_TS_SDK === '2';
const { Client, StreamableHTTPClientTransport, UnauthorizedError } = SDK2
  ? await import('@modelcontextprotocol/client')
  : {
      ...(await import('@modelcontextprotocol/sdk/client/index.js')),
      ...(await import('@modelcontextprotocol/sdk/client/streamableHttp.js')),
      ...(await import('@modelcontextprotocol/sdk/client/auth.js')),
    };

const POLL_MS = 300;
const DECISION_TIMEOUT_MS = 90_000;

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

function parseArgs(argv) {
  const [url, name, ...rest] = argv;
  if (!url || !name) {
    throw new Error('usage: ts_client.mjs <mcp-url> <client-name> [--call NAME=JSON]... [--task NAME=JSON]... [--relist] [--pause] [--progress] [--resources] [--read URI]...');
  }
  const calls = [];
  const tasks = [];
  const reads = [];
  let pause = false;
  let relist = false;
  let progress = false;
  let resources = false;
  let store;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--progress') {
      progress = true;
    } else if (rest[i] === '--resources') {
      resources = true;
    } else if (rest[i] === '--read') {
      reads.push(rest[++i] ?? '');
    } else if (rest[i] === '--store') {
      store = rest[++i];
    } else if (rest[i] === '--pause') {
      pause = true;
    } else if (rest[i] === '--relist') {
      relist = true;
    } else if (rest[i] === '--call' || rest[i] === '--task') {
      const spec = rest[i + 1] ?? '';
      const eq = spec.indexOf('=');
      const call = eq < 0 ? { name: spec, args: {} } : { name: spec.slice(0, eq), args: JSON.parse(spec.slice(eq + 1)) };
      (rest[i++] === '--call' ? calls : tasks).push(call);
    } else {
      throw new Error(`unknown argument ${rest[i]}`);
    }
  }
  return { url, name, calls, tasks, pause, relist, progress, resources, reads, store };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The "browser": /authorize -> 303 waiting page -> (person decides) -> 302 to redirect_uri.
async function browse(authorizationUrl, redirectUri) {
  const origin = new URL(authorizationUrl).origin;
  let url = new URL(authorizationUrl);
  const deadline = Date.now() + DECISION_TIMEOUT_MS;
  let announced = false;
  for (;;) {
    const response = await fetch(url, { redirect: 'manual' });
    const body = await response.text();
    if (response.status >= 300 && response.status < 400) {
      const location = new URL(response.headers.get('location'), url);
      if (location.href.startsWith(redirectUri + '?')) {
        return location.searchParams;
      }
      if (location.origin !== origin) {
        throw new Error(`unexpected cross-origin redirect to ${location.href}`);
      }
      url = location;
      continue;
    }
    if (response.status !== 200) {
      throw new Error(`authorization page answered ${response.status} at ${url.href}`);
    }
    if (!announced) {
      emit('waiting_page', { path: url.pathname, refreshes: body.includes('http-equiv="refresh"') });
      announced = true;
    }
    if (Date.now() > deadline) {
      throw new Error('nobody decided within the timeout');
    }
    await sleep(POLL_MS);
  }
}

// In-memory OAuthClientProvider, as an app that keeps nothing on disk would write it.
class Provider {
  constructor(name, redirectUri, store) {
    this.name = name;
    this._redirectUri = redirectUri;
    this._store = store;
    const kept = store ? JSON.parse(readFileSync(store, { encoding: 'utf8', flag: 'a+' }) || '{}') : {};
    this._clientInformation = kept.clientInformation;
    this._tokens = kept.tokens;
    this._discoveryState = kept.discoveryState;
    this.issuer = kept.discoveryState?.authorizationServerMetadata?.issuer;
    this._codeVerifier = undefined;
    this.issuer = undefined;
    this.authorization = undefined; // Promise of {code} or {error, description}
  }
  get redirectUrl() {
    return this._redirectUri;
  }
  get clientMetadata() {
    return {
      client_name: this.name,
      redirect_uris: [this._redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    return randomBytes(16).toString('hex');
  }
  clientInformation() {
    return this._clientInformation;
  }
  _keep() {
    if (this._store) {
      const kept = { clientInformation: this._clientInformation, tokens: this._tokens, discoveryState: this._discoveryState };
      writeFileSync(this._store, JSON.stringify(kept));
    }
  }
  saveClientInformation(info) {
    this._clientInformation = info;
    this._keep();
    emit('registered', { client_id: info.client_id });
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
    this._keep();
    emit('tokens', { scope: tokens.scope, has_refresh_token: Boolean(tokens.refresh_token) });
  }
  saveCodeVerifier(verifier) {
    this._codeVerifier = verifier;
  }
  codeVerifier() {
    return this._codeVerifier;
  }
  saveDiscoveryState(state) {
    this._discoveryState = state;
    this.issuer = state.authorizationServerMetadata?.issuer;
    this._keep();
  }
  // The 2.x SDK binds the credentials to the authorization server it discovered.
  discoveryState() {
    return this._discoveryState;
  }
  invalidateCredentials(scope) {
    emit('invalidate_credentials', { scope });
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
    this._keep();
  }
  redirectToAuthorization(authorizationUrl) {
    emit('authorize', {
      scope: authorizationUrl.searchParams.get('scope'),
      resource: authorizationUrl.searchParams.get('resource'),
    });
    // Each authorization (there may be several at once) is checked against its own state.
    const expectedState = authorizationUrl.searchParams.get('state');
    // The SDK returns REDIRECT and connect() throws UnauthorizedError; the app then
    // waits for the browser's result (here: this promise).
    this.authorization = browse(authorizationUrl.href, this._redirectUri).then((params) => {
      if (params.get('state') !== expectedState) {
        throw new Error(`state mismatch: sent ${expectedState}, got ${params.get('state')}`);
      }
      if (params.get('iss') !== this.issuer) {
        throw new Error(`iss ${params.get('iss')} is not the issuer ${this.issuer} (RFC 9207)`);
      }
      if (params.get('error')) {
        return { error: params.get('error'), description: params.get('error_description') };
      }
      return { code: params.get('code'), params };
    });
  }
}

// Connects, authorizing first if needed. Returns the client, or null when the person said no.
async function connect(url, provider) {
  const attempt = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    const client = new Client({ name: provider.name, version: '1.0.0' });
    try {
      await client.connect(transport);
      return { client };
    } catch (error) {
      if (!(error instanceof UnauthorizedError)) throw error;
      return { transport };
    }
  };
  let { client, transport } = await attempt();
  if (client) return client;
  const outcome = await finishAuthorization(provider, transport);
  if (!outcome) return null;
  ({ client } = await attempt());
  if (!client) throw new Error('still unauthorized after finishAuth');
  return client;
}

// Waits for the browser; on a code, exchanges it through the SDK. False when denied.
async function finishAuthorization(provider, transport) {
  if (!provider.authorization) throw new Error('unauthorized, but the SDK never asked to authorize');
  const result = await provider.authorization;
  provider.authorization = undefined;
  if (result.error) {
    emit('denied', result);
    return false;
  }
  emit('authorized', { issuer: provider.issuer });
  // The 2.x SDK takes the whole callback (it checks `iss`, RFC 9207); 1.x takes the code.
  await (SDK2 ? transport.finishAuth(result.params) : transport.finishAuth(result.code));
  return true;
}

// Each call; one refused for lack of authorization is retried once after the
// authorization the SDK started (a revoked grant, or a step-up for a new tool).
async function runCalls(client, provider, calls, progress = false) {
  for (const call of calls) {
    for (let attempt = 0; ; attempt++) {
      try {
        const onprogress = (p) => emit('progress', { tool: call.name, progress: p.progress, total: p.total });
        const options = progress ? { onprogress } : undefined;
        const result = await client.callTool({ name: call.name, arguments: call.args }, undefined, options);
        emit('call', { tool: call.name, ok: !result.isError, result });
        break;
      } catch (error) {
        if (error instanceof UnauthorizedError && attempt === 0) {
          emit('call_unauthorized', { tool: call.name, message: error.message, reauthorizing: Boolean(provider.authorization) });
          if (provider.authorization && (await finishAuthorization(provider, client.transport))) continue;
          emit('call', { tool: call.name, ok: false, error: { message: 'not authorized' } });
          return;
        }
        if (error instanceof UnauthorizedError) throw error;
        emit('call', { tool: call.name, ok: false, error: { code: error.code, message: error.message } });
        break;
      }
    }
  }
}

async function runTasks(client, tasks) {
  for (const call of tasks) {
    const stream = client.experimental.tasks.callToolStream({ name: call.name, arguments: call.args }, undefined, {
      task: { ttl: 60_000 },
    });
    for await (const message of stream) {
      if (message.type === 'taskCreated') emit('task_created', { tool: call.name, task_id: message.task.taskId });
      else if (message.type === 'taskStatus') emit('task_status', { tool: call.name, status: message.task.status });
      else if (message.type === 'result') emit('task_result', { tool: call.name, ok: !message.result.isError, result: message.result });
      else if (message.type === 'error') emit('task_result', { tool: call.name, ok: false, error: { code: message.error.code, message: message.error.message } });
    }
  }
  if (tasks.length > 0) {
    const { tasks: listed } = await client.experimental.tasks.listTasks();
    emit('tasks', { ids: listed.map((t) => t.taskId) });
  }
}

async function runResources(client, list, reads) {
  if (list) {
    const { resources } = await client.listResources();
    emit('resources', { uris: resources.map((r) => r.uri) });
  }
  for (const uri of reads) {
    try {
      const { contents } = await client.readResource({ uri });
      emit('resource_read', { uri, ok: true, contents });
    } catch (error) {
      if (error instanceof UnauthorizedError) throw error;
      emit('resource_read', { uri, ok: false, error: { code: error.code, message: error.message } });
    }
  }
}

async function main() {
  const { url, name, calls, tasks, pause, relist, progress, resources, reads, store } = parseArgs(process.argv.slice(2));
  // A loopback redirect URI on a port nothing listens on: the browser stops at the redirect.
  const redirectUri = `http://127.0.0.1:${20000 + (process.pid % 20000)}/callback`;
  const provider = new Provider(name, redirectUri, store);
  const client = await connect(url, provider);
  if (!client) {
    emit('done');
    return;
  }
  const info = client.getServerVersion();
  emit('connected', { server: info?.name, protocol_version: client.transport?.protocolVersion });
  const listTools = async () => emit('tools', { names: (await client.listTools()).tools.map((t) => t.name) });
  await listTools();
  await runCalls(client, provider, calls, progress);
  await runTasks(client, tasks);
  await runResources(client, resources, reads);
  if (relist) await listTools();
  if (pause) {
    emit('paused');
    const lines = createInterface({ input: process.stdin });
    await new Promise((resolve) => lines.once('line', resolve));
    lines.close();
    await runCalls(client, provider, calls);
  }
  await client.close();
  emit('done');
}

main().then(
  () => process.exit(0),
  (error) => {
    emit('error', { message: String(error?.stack ?? error) });
    process.exit(1);
  },
);
