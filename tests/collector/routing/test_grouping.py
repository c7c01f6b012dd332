"""Which group an alert joins: pure, no store."""

from __future__ import annotations

from collector.routing.grouping import group_key
from collector.routing.policy import Route

LABELS = {"rule_id": "accounts.tamper", "host": "ws-1", "account": "wb_zhang"}


def test_alerts_sharing_the_group_by_labels_share_a_group() -> None:
    route = Route.model_validate({"name": "contractors", "receiver": "duty",
                                  "group_by": ["rule_id", "account"]})
    key, grouped = group_key(route, LABELS)
    assert grouped == {"rule_id": "accounts.tamper", "account": "wb_zhang"}
    assert len(key) == 64
    assert group_key(route, {**LABELS, "host": "ws-2"})[0] == key
    assert group_key(route, {**LABELS, "account": "wb_li"})[0] != key


def test_the_same_labels_on_another_route_or_receiver_are_another_group() -> None:
    route = Route.model_validate({"name": "a", "receiver": "duty", "group_by": ["rule_id"]})
    key = group_key(route, LABELS)[0]
    assert group_key(route.model_copy(update={"name": "b"}), LABELS)[0] != key
    assert group_key(route.model_copy(update={"receiver": "audit"}), LABELS)[0] != key


def test_a_missing_label_groups_as_empty() -> None:
    route = Route.model_validate({"name": "a", "receiver": "duty",
                                  "group_by": ["rule_id", "host_group"]})
    assert group_key(route, LABELS)[1] == {"rule_id": "accounts.tamper", "host_group": ""}
