"""An MCP client written with the official Python SDK (`mcp` 2.x, or 1.x in .venv1), driven by tests/it/interop.rs.

It proves that a second, independently written client completes Gatehouse's whole flow:
the 401 challenge, metadata discovery (the SDK checks the metadata `issuer` and the RFC 9207
`iss` byte for byte), dynamic registration, /authorize, the waiting page, the person's
decision (made with the `gatehouse` CLI by the test), the code exchange, and MCP calls
through the gateway (the SDK probes `server/discover` first and falls back to `initialize`).

The SDK's `redirect_handler` plays the browser: it opens the authorization URL without
following redirects, follows Gatehouse's same-origin redirect to the waiting page and polls it
until it redirects to our redirect_uri. The `callback_handler` hands the SDK what arrived
there (`code`, `state`, `iss`), or raises `AccessDenied` when the person said no.

Usage: python py_client.py <mcp-url> <client-name> [--call NAME=JSON]... [--relist] [--pause] [--store FILE]
(--store keeps the registration and tokens in FILE, as an app that remembers them does.)
Output: one JSON object per line on stdout ({"event": ...}), the same events as
ts_client.mjs; exit 0 unless something unexpected happened ({"event":"error"}, exit 1).
"""

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from urllib.parse import parse_qs, urljoin, urlparse

from contextlib import asynccontextmanager

from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

try:  # the 2.x SDK
    import httpx2
    from mcp.client import Client
    from mcp.client.auth import AuthorizationCodeResult
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError

    SDK = 2
except ImportError:  # the 1.x SDK
    import httpx as httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client
    from mcp.shared.exceptions import McpError as MCPError

    SDK = 1

POLL_SECONDS = 0.3
DECISION_TIMEOUT_SECONDS = 90


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


class AccessDenied(Exception):
    """The authorization ended with an error at the redirect URI (e.g. access_denied)."""

    def __init__(self, error: str, description: str | None):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class MemoryStorage:
    """The SDK's TokenStorage, kept in memory (and in a file, with --store)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        if path and os.path.exists(path):
            with open(path) as f:
                kept = json.load(f)
            if kept.get("tokens"):
                self.tokens = OAuthToken.model_validate(kept["tokens"])
            if kept.get("client_info"):
                self.client_info = OAuthClientInformationFull.model_validate(kept["client_info"])

    def keep(self) -> None:
        if self.path:
            kept = {
                "tokens": self.tokens.model_dump(mode="json") if self.tokens else None,
                "client_info": self.client_info.model_dump(mode="json") if self.client_info else None,
            }
            with open(self.path, "w") as f:
                json.dump(kept, f)

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.keep()
        emit("tokens", scope=tokens.scope, has_refresh_token=tokens.refresh_token is not None)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info
        self.keep()
        emit(
            "registered",
            client_id=client_info.client_id,
            auth_method=client_info.token_endpoint_auth_method,
        )


class Browser:
    """Follows /authorize to the waiting page and polls it until it sends us to redirect_uri."""

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.result: dict[str, str] | None = None

    async def open(self, authorization_url: str) -> None:
        query = parse_qs(urlparse(authorization_url).query)
        emit("authorize", scope=query.get("scope", [None])[0], resource=query.get("resource", [None])[0])
        origin = urlparse(authorization_url)[:2]
        url = authorization_url
        deadline = time.monotonic() + DECISION_TIMEOUT_SECONDS
        announced = False
        async with httpx2.AsyncClient(follow_redirects=False) as http:
            while True:
                response = await http.get(url)
                if response.is_redirect:
                    location = urljoin(url, response.headers["location"])
                    if location.startswith(self.redirect_uri + "?"):
                        params = parse_qs(urlparse(location).query)
                        self.result = {k: v[0] for k, v in params.items()}
                        return
                    if urlparse(location)[:2] != origin:
                        raise RuntimeError(f"unexpected cross-origin redirect to {location}")
                    url = location
                    continue
                if response.status_code != 200:
                    raise RuntimeError(f"authorization page answered {response.status_code} at {url}")
                if not announced:
                    emit("waiting_page", path=urlparse(url).path, refreshes='http-equiv="refresh"' in response.text)
                    announced = True
                if time.monotonic() > deadline:
                    raise RuntimeError("nobody decided within the timeout")
                await asyncio.sleep(POLL_SECONDS)

    async def callback(self):
        result, self.result = self.result or {}, None
        if "error" in result:
            emit("denied", error=result["error"], description=result.get("error_description"))
            raise AccessDenied(result["error"], result.get("error_description"))
        emit("authorized", issuer=result.get("iss"))
        if SDK == 1:
            return result["code"], result.get("state")
        return AuthorizationCodeResult(code=result["code"], state=result.get("state"), iss=result.get("iss"))


def find(error: BaseException, kind: type, seen: set[int] | None = None) -> BaseException | None:
    """The first exception of this kind in an exception (group), its causes and contexts."""
    seen = set() if seen is None else seen
    if id(error) in seen:
        return None
    seen.add(id(error))
    if isinstance(error, kind):
        return error
    children = list(getattr(error, "exceptions", [])) + [e for e in (error.__cause__, error.__context__) if e]
    for child in children:
        found = find(child, kind, seen)
        if found:
            return found
    return None


async def run_calls(client, calls: list[tuple[str, dict]]) -> None:
    for name, args in calls:
        try:
            result = await client.call_tool(name, args)
            is_error = result.is_error if SDK == 2 else result.isError
            emit("call", tool=name, ok=not is_error, result=result.model_dump(mode="json", exclude_none=True))
        except MCPError as error:
            emit("call", tool=name, ok=False, error={"code": error.error.code, "message": error.error.message})


@asynccontextmanager
async def session(url: str, auth: OAuthClientProvider):
    """A connected MCP session through the SDK's streamable HTTP client: (client, server name, protocol)."""
    if SDK == 2:
        http = httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=300))
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            info = client.server_info
            yield client, info.name if info else None, client.protocol_version
    else:
        async with streamablehttp_client(url, auth=auth, timeout=30, sse_read_timeout=300) as (read, write, _):
            async with ClientSession(read, write) as client:
                init = await client.initialize()
                yield client, init.serverInfo.name, init.protocolVersion


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("--call", action="append", default=[])
    parser.add_argument("--relist", action="store_true")
    parser.add_argument("--pause", action="store_true")
    parser.add_argument("--store")
    options = parser.parse_args()
    calls = []
    for spec in options.call:
        name, _, args = spec.partition("=")
        calls.append((name, json.loads(args) if args else {}))

    # A loopback redirect URI on a port nothing listens on: the browser stops at the redirect.
    redirect_uri = f"http://127.0.0.1:{20000 + os.getpid() % 20000}/callback"
    browser = Browser(redirect_uri)
    auth = OAuthClientProvider(
        server_url=options.url,
        client_metadata=OAuthClientMetadata(client_name=options.name, redirect_uris=[redirect_uri]),
        storage=MemoryStorage(options.store),
        redirect_handler=browser.open,
        callback_handler=browser.callback,
    )
    paused = False
    try:
        async with session(options.url, auth) as (client, server, protocol):
            emit("connected", server=server, protocol_version=protocol)
            emit("tools", names=[t.name for t in (await client.list_tools()).tools])
            await run_calls(client, calls)
            if options.relist:
                emit("tools", names=[t.name for t in (await client.list_tools()).tools])
            if options.pause:
                emit("paused")
                paused = True
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
                await run_calls(client, calls)
    except BaseException as error:  # noqa: BLE001
        if find(error, AccessDenied) is None:
            raise
        if paused:
            # The gateway refused the token: the SDK ran a new authorization inside the
            # failed request, the person said no, and the connection ended with the error.
            emit("call_unauthorized", message=str(find(error, AccessDenied)))
    emit("done")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException as error:  # noqa: BLE001
        emit("error", message="".join(traceback.format_exception(error)))
        sys.exit(1)
