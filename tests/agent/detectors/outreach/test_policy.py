"""The networks policy model: lists by role, clear errors for bad entries and shapes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent.detectors.outreach.policy import NetworksPolicy
from tests.agent.detectors.outreach.conftest import shipped_data


def with_changes(**lists: Any) -> dict[str, Any]:
    data = shipped_data()
    data["lists"].update(lists)
    return data


def test_bad_network_names_list_and_value() -> None:
    with pytest.raises(
        ValidationError, match=r"court_intranet: '10\.300\.0\.0/8' is not an IP network"
    ):
        NetworksPolicy.model_validate(with_changes(court_intranet=["10.300.0.0/8"]))


def test_role_naming_a_missing_list_is_an_error() -> None:
    data = shipped_data()
    data["settings"]["intranet"] = ["nope"]
    with pytest.raises(ValidationError, match="names list 'nope'"):
        NetworksPolicy.model_validate(data)


def test_bad_mac_entry_is_an_error() -> None:
    with pytest.raises(ValidationError, match="mac:aa:bb"):
        NetworksPolicy.model_validate(with_changes(approved_interfaces=["mac:zz"]))


def test_link_down_on_a_flow_rule_is_refused() -> None:
    data = shipped_data()
    data["rules"][5]["response"] = "link-down"
    with pytest.raises(ValidationError, match="link-down needs an interface"):
        NetworksPolicy.model_validate(data)


def test_unknown_exception_field_is_refused() -> None:
    data = shipped_data()
    data["rules"][5]["exceptions"] = [{"name": "x", "fields": ["process.colour"], "values": []}]
    with pytest.raises(ValidationError, match="unknown field"):
        NetworksPolicy.model_validate(data)
