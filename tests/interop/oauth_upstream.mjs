// A remote MCP server that asks for an OAuth login, built from the official
// TypeScript SDK's server and auth pieces (mcpAuthRouter: metadata,
// registration, authorization, token; requireBearerAuth on /mcp), with an
// in-memory provider that approves at once (the person's "yes" in the
// browser). Driven by tests/it/upstream_login.rs.
//
// Usage: node oauth_upstream.mjs <log-file>
//   env TOKEN_TTL   access token lifetime in seconds (default 3600)
//   env PORT        the port (default: any free one)
// Prints `listening on http://127.0.0.1:<port>` once it listens. Appends one
// JSON line per event to <log-file>: {"issued": token, "grant": …} for each
// token it issues, {"seen": authorization-header} for each MCP request.

import { appendFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import express from 'express';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { mcpAuthRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';

const logFile = process.argv[2];
const ttl = Number(process.env.TOKEN_TTL ?? 3600);
const log = (entry) => appendFileSync(logFile, JSON.stringify(entry) + '\n');

const clients = new Map();
const codes = new Map();
const tokens = new Map();

function issue(clientId, scopes, resource, grant) {
  const access = `up-at-${randomUUID()}`;
  const refresh = `up-rt-${randomUUID()}`;
  tokens.set(access, { clientId, scopes, resource, expiresAt: Math.floor(Date.now() / 1000) + ttl });
  tokens.set(refresh, { clientId, scopes, resource, refresh: true });
  log({ issued: access, refresh, grant });
  return { access_token: access, token_type: 'bearer', expires_in: ttl, refresh_token: refresh, scope: scopes.join(' ') };
}

const provider = {
  clientsStore: {
    getClient: async (id) => clients.get(id),
    registerClient: async (client) => {
      clients.set(client.client_id, client);
      return client;
    },
  },
  // The person says yes at once: back to the client with a code.
  async authorize(client, params, res) {
    const code = randomUUID();
    codes.set(code, { client: client.client_id, params });
    const back = new URL(params.redirectUri);
    back.searchParams.set('code', code);
    if (params.state) back.searchParams.set('state', params.state);
    res.redirect(back.href);
  },
  async challengeForAuthorizationCode(_client, code) {
    return codes.get(code).params.codeChallenge;
  },
  async exchangeAuthorizationCode(client, code, _verifier, _redirectUri, resource) {
    const entry = codes.get(code);
    codes.delete(code);
    if (!entry || entry.client !== client.client_id) throw new Error('unknown code');
    if (resource?.href !== entry.params.resource?.href) throw new Error('resource differs from the authorization');
    return issue(client.client_id, entry.params.scopes ?? [], resource?.href, 'authorization_code');
  },
  async exchangeRefreshToken(client, refreshToken, scopes, resource) {
    const entry = tokens.get(refreshToken);
    if (!entry?.refresh || entry.clientId !== client.client_id) throw new Error('unknown refresh token');
    tokens.delete(refreshToken);
    return issue(client.client_id, scopes ?? entry.scopes, resource?.href ?? entry.resource, 'refresh_token');
  },
  async verifyAccessToken(token) {
    const entry = tokens.get(token);
    if (!entry || entry.refresh || entry.expiresAt < Date.now() / 1000) {
      const { InvalidTokenError } = await import('@modelcontextprotocol/sdk/server/auth/errors.js');
      throw new InvalidTokenError('the token is unknown or expired');
    }
    return { token, clientId: entry.clientId, scopes: entry.scopes, expiresAt: entry.expiresAt };
  },
};

const app = express();
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  const mcpUrl = new URL(`${base}/mcp`);
  app.use(
    mcpAuthRouter({ provider, issuerUrl: new URL(base), resourceServerUrl: mcpUrl, scopesSupported: ['notes:read'] }),
  );
  const bearer = requireBearerAuth({ verifier: provider, resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl) });
  app.post('/mcp', express.json(), (req, _res, next) => {
    log({ seen: req.headers.authorization ?? null });
    next();
  }, bearer, async (req, res) => {
    const mcp = new McpServer({ name: 'oauth-upstream', version: '1.0.0' });
    mcp.tool('whoami', 'Says which client the token belongs to.', {}, { readOnlyHint: true }, async (_args, extra) => ({
      content: [{ type: 'text', text: `client ${extra.authInfo?.clientId}` }],
    }));
    mcp.tool('echo', 'Echoes a word.', { word: z.string() }, { readOnlyHint: true }, async ({ word }) => ({
      content: [{ type: 'text', text: word }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => transport.close());
    await mcp.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  console.log(`listening on ${base}`);
});
