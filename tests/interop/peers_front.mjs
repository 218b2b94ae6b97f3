// The official TypeScript SDK's bearer-token check (`requireBearerAuth`, the
// piece an SDK-built server puts in front of its MCP endpoint) in front of a
// plain forwarding server: each MCP request whose token is one of the given
// tokens is passed to the upstream URL, and its answer (JSON or SSE) streamed
// back. For the peer comparison (benches/peers.rs); not part of Gatehouse.
//
//   node peers_front.mjs <port> <upstream URL> <token,token,...>
import express from 'express';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

const [port, upstream, tokenList] = process.argv.slice(2);
const tokens = new Set(tokenList.split(','));
const verifier = {
  async verifyAccessToken(token) {
    if (!tokens.has(token)) throw new InvalidTokenError('unknown token');
    return { token, clientId: 'bench', scopes: [], expiresAt: Math.floor(Date.now() / 1000) + 3600 };
  },
};

const passed = ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'];
const app = express();
app.use(express.raw({ type: () => true, limit: '4mb' }));
app.all('/mcp', requireBearerAuth({ verifier }), async (req, res) => {
  const headers = {};
  for (const h of passed) if (req.headers[h]) headers[h] = req.headers[h];
  const body = req.method === 'GET' || req.method === 'DELETE' ? undefined : req.body;
  const answer = await fetch(upstream, { method: req.method, headers, body });
  res.status(answer.status);
  for (const h of ['content-type', 'mcp-session-id']) {
    const v = answer.headers.get(h);
    if (v) res.setHeader(h, v);
  }
  if (!answer.body) return res.end();
  for await (const chunk of answer.body) res.write(chunk);
  res.end();
});
app.listen(Number(port), '127.0.0.1', () => console.log(`listening on ${port}`));
