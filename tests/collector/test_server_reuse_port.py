"""``reuse_port``: several processes bind one address; a port taken without it is a clear error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from collector.errors import ConfigError
from collector.server import _shared_socket
from collector.settings import CollectorSettings


def settings_on(tmp_path: Path, port: int) -> CollectorSettings:
    return CollectorSettings(data_dir=tmp_path, listen_host="127.0.0.1", listen_port=port,
                             reuse_port=True)


def test_two_listeners_share_one_port_and_both_accept(tmp_path: Path) -> None:
    first = _shared_socket(settings_on(tmp_path, 0))
    port = first.getsockname()[1]
    second = _shared_socket(settings_on(tmp_path, port))
    try:
        accepted = set()
        # The kernel spreads new connections over both listeners by their addresses' hash.
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        for listener in (first, second):
            listener.setblocking(True)
            listener.settimeout(0.5)
            while True:
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    break
                accepted.add(listener.fileno())
                conn.close()
        for client in clients:
            client.close()
        assert accepted == {first.fileno(), second.fileno()}
    finally:
        first.close()
        second.close()


def test_a_port_held_without_reuse_port_is_a_clear_error(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:\d+ with reuse_port"):
            _shared_socket(settings_on(tmp_path, holder.getsockname()[1]))
    finally:
        holder.close()
