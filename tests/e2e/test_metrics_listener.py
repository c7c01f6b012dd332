"""``[metrics] listen``: a real collector serves /metrics on an address of its own.

The main HTTPS port then answers 404 there, with or without a key; the
listener needs none (it is meant for loopback or a management network). A
listen address already taken stops the start with a sentence, not a traceback.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import BIN, Collector, free_port

pytestmark = pytest.mark.e2e


def with_listener(home: Path, port: int) -> Collector:
    config = home / "collector.toml"
    config.write_text(f'[metrics]\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8")
    instance = Collector(home=home, database_url=f"sqlite:///{home / 'collector.db'}")
    instance.extra_env["COURTGUARD_COLLECTOR_CONFIG"] = str(config)
    return instance


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[Collector, int]]:
    port = free_port()
    instance = with_listener(tmp_path, port)
    instance.init()
    instance.start()
    yield instance, port
    instance.stop()


def test_metrics_on_their_own_listener(collector: tuple[Collector, int]) -> None:
    instance, port = collector
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    assert answer.status_code == 200
    assert 'courtguard_agents{status="online"} 0.0' in answer.text
    assert "courtguard_notifications_undeliverable_total 0.0" in answer.text
    with instance.http() as client:
        main = client.get("/metrics",
                          headers={"Authorization": f"Bearer {instance.admin_key}"})
        assert main.status_code == 404
        assert f"127.0.0.1:{port}" in main.json()["detail"]
        assert client.get("/healthz").status_code == 200


def test_a_taken_listen_address_stops_the_start_with_a_sentence(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        instance = with_listener(tmp_path, taken.getsockname()[1])
        instance.init()
        result = subprocess.run(  # the process exits by itself: nothing to wait for
            [str(BIN / "courtguard-collector"), "serve"], env=instance.env(),
            capture_output=True, text=True, timeout=120, check=False,
        )
    assert result.returncode != 0
    assert "[metrics] listen" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
