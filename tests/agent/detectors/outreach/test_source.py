"""The live source in a network namespace of its own: policy updates rebuild the table and undo.

Runs ``OutreachSource`` in-process, on an event loop in a thread that entered
a fresh namespace (setns is per thread; the ``nft`` children it forks inherit
it), so the machine's own ruleset is never touched.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.detector import SourceContext
from agent.detectors.outreach.observations import ActionObservation, LinkObservation
from agent.detectors.outreach.policy import NetworksPolicy
from agent.detectors.outreach.source import OutreachSource
from tests.e2e.harness import in_netns
from tests.e2e.netns import networks_policy

pytestmark = pytest.mark.root


def table() -> str:
    result = subprocess.run(
        ["nft", "list", "table", "inet", "courtguard"], capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else ""


async def until(predicate: Any, what: str, within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_policy_updates_block_and_unblock_without_a_restart(netns: str, tmp_path: Path) -> None:
    """update_policy with a block rule installs drops; the next one without it removes them."""
    report = NetworksPolicy.model_validate(networks_policy())
    block = NetworksPolicy.model_validate(
        networks_policy(**{"outreach.flow-outside": {"response": "block"}})
    )
    settings = SimpleNamespace(data_dir=tmp_path, hostname="ws-test")
    seen: list[Any] = []

    async def scenario() -> None:
        source = OutreachSource(SourceContext(settings, report, frozenset({"CAP_NET_ADMIN"})))

        async def pump() -> None:
            async for observation in source.observations():
                seen.append(observation)

        task = asyncio.create_task(pump())
        try:
            await until(lambda: "watch_out" in table(), "the watching table")
            assert "drop" not in table()
            # The table can be seen before the pump has taken the first observations.
            await until(
                lambda: any(isinstance(o, LinkObservation) and o.link.name == "lo" for o in seen),
                "the loopback link",
            )
            source.update_policy(block)
            await until(lambda: "drop" in table(), "drop rules")
            source.update_policy(report)
            await until(lambda: "drop" not in table(), "drop rules to go")
            await until(
                lambda: (
                    [o.action for o in seen if isinstance(o, ActionObservation)]
                    == ["block", "unblock"]
                ),
                "block and unblock actions",
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert table() == ""  # watching stops with the source

    in_netns(netns, lambda: asyncio.run(scenario()))


def test_without_net_admin_links_are_watched_and_no_table_is_made(
    netns: str, tmp_path: Path
) -> None:
    """Lacking CAP_NET_ADMIN the source still reports links and addresses, and leaves nft alone."""
    policy = NetworksPolicy.model_validate(networks_policy())
    settings = SimpleNamespace(data_dir=tmp_path, hostname="ws-test")
    seen: list[Any] = []

    async def scenario() -> None:
        source = OutreachSource(SourceContext(settings, policy, frozenset()))

        async def pump() -> None:
            async for observation in source.observations():
                seen.append(observation)

        task = asyncio.create_task(pump())
        try:
            await until(lambda: any(isinstance(o, LinkObservation) for o in seen), "a link")
            await asyncio.sleep(0.5)
            assert table() == ""
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    in_netns(netns, lambda: asyncio.run(scenario()))
