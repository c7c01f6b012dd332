"""``serve`` raises its open-file limit: every agent keeps two connections open (policy, ingest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import resource
from collector.server import raise_open_file_limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
wanted = 300 if hard == resource.RLIM_INFINITY else min(300, hard)
assert raise_open_file_limit(wanted) == wanted, resource.getrlimit(resource.RLIMIT_NOFILE)
assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == wanted
# Never lowered, never above the hard limit (raising that needs privilege).
assert raise_open_file_limit(100) == wanted
if hard != resource.RLIM_INFINITY:
    assert raise_open_file_limit(hard + 1000) == hard
print("ok")
"""


def test_the_soft_limit_is_raised_towards_what_is_wanted_never_past_the_hard_one() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


TLS_SCRIPT = """
import asyncio, hashlib, os, ssl, sys
from asyncio import sslproto
from collector.server import TLS_READ_BUFFER, smaller_tls_buffers
from collector.tls import TLSFiles, ensure_tls
from pathlib import Path

smaller_tls_buffers()
assert sslproto.SSLProtocol.max_size == TLS_READ_BUFFER
ensure_tls(Path(sys.argv[1]), ["127.0.0.1"])
paths = TLSFiles.in_dir(Path(sys.argv[1]))
body = os.urandom(3 * 1024 * 1024 + 17)

async def main():
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(paths.server_cert, paths.server_key)
    got = asyncio.get_running_loop().create_future()

    async def handle(reader, writer):
        got.set_result(await reader.readexactly(len(body)))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=str(paths.ca_cert))
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                    server_hostname="127.0.0.1")
    writer.write(body)
    await writer.drain()
    received = await asyncio.wait_for(got, 120)
    assert hashlib.sha256(received).digest() == hashlib.sha256(body).digest()
    writer.close()
    server.close()

asyncio.run(main())
print("ok")
"""


def test_small_tls_read_buffers_still_carry_large_bodies_whole(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", TLS_SCRIPT, str(tmp_path)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


HELD_SCRIPT = """
import resource
from collector.api.policy import CONNECTIONS_PER_AGENT, FD_RESERVE, PolicyWaits
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (5000, hard))
assert CONNECTIONS_PER_AGENT == 2
# Each held agent keeps its ingest connection too: half of what the reserve leaves.
assert PolicyWaits().allowed(25_000) == (5000 - FD_RESERVE) // 2 == 1988
assert PolicyWaits().allowed(100) == 100
print("ok")
"""


def test_held_fetches_leave_each_agent_room_for_its_ingest_connection() -> None:
    result = subprocess.run([sys.executable, "-c", HELD_SCRIPT], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
