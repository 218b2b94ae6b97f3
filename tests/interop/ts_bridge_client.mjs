// An MCP client written with the official TypeScript SDK that can only launch
// stdio servers (as Claude Desktop's local config does): it launches
// `gatehouse bridge <server>` with the SDK's StdioClientTransport and uses
// the tools through it. Driven by tests/it/bridge.rs; the person's decisions
// are made with the `gatehouse` CLI by the test.
//
// Usage: node ts_bridge_client.mjs <gatehouse-binary> <data-dir> <server> <client-name> [options]
//   --call NAME=JSON   call a tool with these arguments (repeatable, in order)
//   --pause            after the calls, print {"event":"paused"}, wait for a line on
//                      stdin, then make the calls again
// Output: one JSON object per line on stdout ({"event": ...}).

import { createInterface } from 'node:readline';

// MCP_TS_SDK=2 runs the same client on the 2.x SDK (@modelcontextprotocol/client).
const SDK2 = process.env.MCP_TS_SDK === '2';
const { Client } = SDK2
  ? await import('@modelcontextprotocol/client')
  : await import('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = SDK2
  ? await import('@modelcontextprotocol/client/stdio')
  : await import('@modelcontextprotocol/sdk/client/stdio.js');

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

const [bin, dataDir, server, name, ...rest] = process.argv.slice(2);
const calls = [];
let pause = false;
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--pause') {
    pause = true;
  } else if (rest[i] === '--call') {
    const spec = rest[++i] ?? '';
    const eq = spec.indexOf('=');
    calls.push(eq < 0 ? { name: spec, args: {} } : { name: spec.slice(0, eq), args: JSON.parse(spec.slice(eq + 1)) });
  }
}

async function callAll(client) {
  for (const call of calls) {
    try {
      const result = await client.callTool({ name: call.name, arguments: call.args }, undefined, { timeout: 120_000 });
      const text = (result.content ?? []).map((c) => c.text ?? '').join('');
      emit('call', { name: call.name, text, isError: result.isError ?? false });
    } catch (e) {
      emit('call', { name: call.name, error: String(e?.message ?? e), code: e?.code ?? null });
    }
  }
}

const transport = new StdioClientTransport({
  command: bin,
  args: ['--data-dir', dataDir, 'bridge', server, '--name', name],
  stderr: 'inherit',
});
const client = new Client({ name, version: '1.0.0' });
try {
  await client.connect(transport, { timeout: 120_000 });
  emit('connected', { server: client.getServerVersion()?.name ?? null });
  const tools = await client.listTools();
  emit('tools', { names: tools.tools.map((t) => t.name) });
  await callAll(client);
  if (pause) {
    emit('paused');
    const lines = createInterface({ input: process.stdin });
    await new Promise((resolve) => lines.once('line', resolve));
    lines.close();
    await callAll(client);
  }
  await client.close();
  emit('done');
} catch (e) {
  emit('error', { message: String(e?.message ?? e), code: e?.code ?? null });
  process.exitCode = 1;
  await client.close().catch(() => {});
}
