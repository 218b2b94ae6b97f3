"""An MCP client written with the official Python SDK (2.x, or 1.x in .venv1) that launches
`gatehouse bridge <server>` as a stdio server, as a stdio-only client would. Driven by
tests/it/matrix.rs; the person's decisions are made with the `gatehouse` CLI by the test.

Usage: python py_bridge_client.py <gatehouse-binary> <data-dir> <server> <client-name> [--call NAME=JSON]...
Output: one JSON object per line on stdout ({"event": ...}), as ts_bridge_client.mjs.
"""

import argparse
import asyncio
import json
import sys
import traceback
from contextlib import asynccontextmanager

from mcp.client.stdio import StdioServerParameters

try:  # the 2.x SDK
    from mcp.client import Client

    SDK = 2
except ImportError:  # the 1.x SDK
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    SDK = 1


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


@asynccontextmanager
async def session(params: StdioServerParameters):
    if SDK == 2:
        async with Client(params, read_timeout_seconds=120) as client:
            yield client
    else:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                yield client


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bin")
    parser.add_argument("data_dir")
    parser.add_argument("server")
    parser.add_argument("name")
    parser.add_argument("--call", action="append", default=[])
    options = parser.parse_args()
    params = StdioServerParameters(
        command=options.bin,
        args=["--data-dir", options.data_dir, "bridge", options.server, "--name", options.name],
    )
    async with session(params) as client:
        emit("connected")
        emit("tools", names=[t.name for t in (await client.list_tools()).tools])
        for spec in options.call:
            name, _, args = spec.partition("=")
            result = await client.call_tool(name, json.loads(args) if args else {})
            is_error = result.is_error if SDK == 2 else result.isError
            text = "".join(getattr(c, "text", "") for c in result.content)
            emit("call", name=name, text=text, isError=is_error)
    emit("done")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException as error:  # noqa: BLE001
        emit("error", message="".join(traceback.format_exception(error)))
        sys.exit(1)
