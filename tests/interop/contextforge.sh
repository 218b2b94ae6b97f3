#!/usr/bin/env bash
# IBM ContextForge (mcp-contextforge-gateway, from tests/interop/.venv-contextforge,
# see scripts/setup-peers) for the peer comparison (benches/peers.rs); not part of
# Gatehouse. Starts it on loopback with its JWT authentication on, registers an
# upstream streamable-HTTP MCP server, puts its `echo` tool (named
# `<gateway>-echo` by ContextForge) on a virtual server, and prints two lines:
#   the virtual server's MCP endpoint URL
#   a bearer JWT that endpoint accepts
# ContextForge keeps running (its pid in <work dir>/cf.pid, its log in cf.log).
#
#   contextforge.sh <work dir> <port> <upstream MCP URL>
#
# Settings: auth required everywhere (the defaults, set explicitly); stateful
# MCP sessions (one upstream session per client session; its default opens a
# new upstream session for every call, ~5x slower); a SQLite file and an
# in-process cache (no Redis); everything a benchmark does not use switched
# off (UI, admin UI API, plugins, observability, catalog, A2A, SSO, metrics
# jobs, rate limiting, which would throttle the load to 100 requests/min).
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 <work dir> <port> <upstream MCP URL>" >&2
    exit 2
fi
work="$1" port="$2" upstream="$3"
venv="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv-contextforge"
py="$venv/bin/python"
if [ ! -x "$venv/bin/mcpgateway" ]; then
    echo "contextforge.sh: ContextForge is not installed; run scripts/setup-peers" >&2
    exit 1
fi
mkdir -p "$work"
# pydantic-settings also reads ./.env: run where there is none.
cd "$work"
admin=admin@example.com
secret() { "$py" -c 'import secrets; print(secrets.token_urlsafe(48))'; }

set -a
AUTH_REQUIRED=true
MCP_REQUIRE_AUTH=true
MCP_CLIENT_AUTH_ENABLED=true
JWT_ALGORITHM=HS256
JWT_SECRET_KEY="$(secret)"
AUTH_ENCRYPTION_SECRET="$(secret)"
BASIC_AUTH_PASSWORD="$(secret)"
API_ALLOW_BASIC_AUTH=false
PLATFORM_ADMIN_EMAIL="$admin"
PLATFORM_ADMIN_PASSWORD="Bench-$(secret)"
TOKEN_IDLE_TIMEOUT=1440
ENVIRONMENT=development
DATABASE_URL="sqlite:///$work/cf.db"
CACHE_TYPE=memory
REDIS_URL=
MCPGATEWAY_UI_ENABLED=false
MCPGATEWAY_ADMIN_API_ENABLED=false
LEGACY_API_ENABLED=false
PLUGINS_ENABLED=false
OBSERVABILITY_ENABLED=false
OTEL_ENABLE_OBSERVABILITY=false
LLMCHAT_ENABLED=false
MCPGATEWAY_CATALOG_ENABLED=false
MCPGATEWAY_A2A_ENABLED=false
SSO_ENABLED=false
METRICS_CLEANUP_ENABLED=false
METRICS_ROLLUP_ENABLED=false
HEALTH_CHECK_INTERVAL=3600
RATE_LIMITING_ENABLED=false
SSRF_ALLOW_LOCALHOST=true
USE_STATEFUL_SESSIONS=true
JSON_RESPONSE_ENABLED=true
LOG_LEVEL=ERROR
set +a

rm -f "$work"/cf.db*
setsid "$venv/bin/mcpgateway" --host 127.0.0.1 --port "$port" --workers 1 \
    --no-access-log --log-level warning >"$work/cf.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$work/cf.pid"
trap 'rc=$?; [ $rc -eq 0 ] || kill -- "-$pid" 2>/dev/null || true' EXIT

# ContextForge's own token tool: signed with JWT_SECRET_KEY, for the admin it creates.
token="$("$py" -m mcpgateway.utils.create_jwt_token -u "$admin" --admin --exp 10080 2>/dev/null)"

base="http://127.0.0.1:$port"
for i in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || { echo "ContextForge exited while starting; see $work/cf.log" >&2; exit 1; }
    "$py" -c 'import sys, httpx; httpx.get(sys.argv[1], timeout=1).raise_for_status()' \
        "$base/health" 2>/dev/null && break
    [ "$i" -lt 600 ] || { echo "ContextForge did not come up in 60 s; see $work/cf.log" >&2; exit 1; }
    sleep 0.1
done

BASE="$base" TOKEN="$token" UPSTREAM="$upstream" "$py" - <<'EOF'
import os, sys, httpx
c = httpx.Client(base_url=os.environ["BASE"], timeout=60,
                 headers={"Authorization": f"Bearer {os.environ['TOKEN']}"})
def ok(r):
    if r.status_code >= 300:
        sys.exit(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:300]}")
    return r.json()
gateway = ok(c.post("/v1/gateways", json={"name": "everything", "url": os.environ["UPSTREAM"],
                                          "transport": "STREAMABLEHTTP"}))
tools = ok(c.get("/v1/tools", params={"gateway_id": gateway["id"], "limit": 0}))
tools = tools if isinstance(tools, list) else tools.get("items", tools.get("data", []))
echo = [t for t in tools if t.get("originalName") == "echo"]
if not echo:
    sys.exit(f"the upstream has no echo tool: {[t.get('name') for t in tools]}")
server = ok(c.post("/v1/servers", json={"server": {"name": "bench", "associated_tools": [echo[0]["id"]]},
                                        "visibility": "public"}))
print(f"{os.environ['BASE']}/servers/{server['id']}/mcp")
EOF
echo "$token"
