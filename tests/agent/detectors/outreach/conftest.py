"""Shared fixtures for the outreach detector's tests: the shipped policy, variants, a namespace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.detectors.outreach.policy import NetworksPolicy
from tests.e2e.netns import require_root, scratch_netns

REPO = Path(__file__).resolve().parents[4]
SHIPPED = REPO / "policies" / "networks.yaml"


def shipped_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    return data


@pytest.fixture
def policy() -> NetworksPolicy:
    return NetworksPolicy.model_validate(shipped_data())


@pytest.fixture
def make_policy() -> Any:
    """The shipped policy with ``settings`` and rule fields overridden."""

    def make(
        settings: dict[str, Any] | None = None, **rule_changes: dict[str, Any]
    ) -> NetworksPolicy:
        data = shipped_data()
        data["settings"].update(settings or {})
        for rule in data["rules"]:
            rule.update(rule_changes.get(rule["id"], {}))
        return NetworksPolicy.model_validate(data)

    return make


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace with loopback up (needs root: skipped, or a failure on CI)."""
    require_root()
    with scratch_netns("cgout") as name:
        yield name
