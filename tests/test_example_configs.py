"""packaging/examples/{agent,collector}.toml name every setting and load as valid configs."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from agent.policy.loader import load_policy_dir
from agent.settings import AgentSettings
from collector.notify.config import unconfigured_channels
from collector.routing.policy import AlertingPolicy
from collector.settings import CollectorSettings

EXAMPLES = Path(__file__).resolve().parents[1] / "packaging" / "examples"
TABLE = re.compile(r"^#?\s*\[\[?\s*([\w.\-]+)\s*\]\]?\s*$")
KEY = re.compile(r"^#{0,2}\s*([a-z_]+)\s*=")
#: One "# " before a setting or a table: what an administrator removes to use it.
COMMENTED = re.compile(r"^# (?=\[|[a-z_]+\s*=)")


def _models_inside(annotation: object) -> list[type[BaseModel]]:
    return [a for a in typing.get_args(annotation) or (annotation,)
            if isinstance(a, type) and issubclass(a, BaseModel)]


def setting_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every setting as a dotted path; ``*`` stands for a name chosen in the file."""
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        origin = typing.get_origin(annotation)
        if origin is dict and _models_inside(typing.get_args(annotation)[1]):
            inner = _models_inside(typing.get_args(annotation)[1])[0]
            paths |= setting_paths(inner, f"{prefix}{name}.*.")
        elif origin is list and _models_inside(typing.get_args(annotation)[0]):
            paths |= setting_paths(_models_inside(typing.get_args(annotation)[0])[0],
                                   f"{prefix}{name}.")
        elif origin not in (dict, list) and _models_inside(annotation) and (
                origin is None or origin in (typing.Union, types.UnionType)):
            paths |= setting_paths(_models_inside(annotation)[0], f"{prefix}{name}.")
        else:
            paths.add(prefix + name)
    return paths


def example_paths(text: str, named_tables: set[str]) -> set[str]:
    """Dotted paths of every setting written in the example, commented out or not."""
    found: set[str] = set()
    table = ""
    for line in text.splitlines():
        if match := TABLE.match(line):
            parts = match.group(1).split(".")
            if ".".join(parts[:-1]) in named_tables:  # [notify_channels.duty-email]
                parts[-1] = "*"
            table = ".".join(parts) + "."
            found.add(table.rstrip("."))  # [detectors]: a dict written as a table
        elif match := KEY.match(line):
            found.add(table + match.group(1))
    return found


def uncommented(text: str) -> str:
    return "\n".join(COMMENTED.sub("", line) for line in text.splitlines()) + "\n"


CASES = [("agent.toml", AgentSettings, "COURTGUARD_AGENT_"),
         ("collector.toml", CollectorSettings, "COURTGUARD_COLLECTOR_")]


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("COURTGUARD_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("name", "model", "prefix"), CASES)
def test_every_setting_appears_in_the_example(
    name: str, model: type[BaseModel], prefix: str
) -> None:
    wanted = setting_paths(model)
    named = {p.split(".*.")[0] for p in wanted if ".*." in p}
    written = example_paths((EXAMPLES / name).read_text(encoding="utf-8"), named)
    missing = sorted(wanted - written)
    assert not missing, f"{name} does not mention: {missing}"
    unknown = sorted(p for p in written - wanted
                     if not any(w.startswith(p + ".") or p.startswith(w + ".") for w in wanted))
    assert not unknown, f"{name} mentions settings that do not exist: {unknown}"


@pytest.mark.parametrize(("name", "model", "prefix"), CASES)
def test_the_example_loads_as_is_and_with_every_setting_switched_on(
    name: str, model: type[AgentSettings | CollectorSettings], prefix: str, tmp_path: Path
) -> None:
    source = EXAMPLES / name
    # As shipped, every setting is commented out: the file loads and changes nothing.
    assert model.load(source).model_dump() == model().model_dump()
    everything = tmp_path / name
    everything.write_text(uncommented(source.read_text(encoding="utf-8")), encoding="utf-8")
    loaded = model.load(everything)
    assert loaded.model_fields_set, "uncommenting switched nothing on"
    # Spot checks that the uncommented file was read, not silently defaulted.
    if isinstance(loaded, CollectorSettings):
        # Uncommented, the example defines every channel the shipped alerting policy uses.
        shipped = load_policy_dir(EXAMPLES.parents[1] / "policies").section("alerting")
        assert isinstance(shipped, AlertingPolicy)
        assert set(loaded.notify_channels) == {"dingtalk", "email", "sms"}
        assert unconfigured_channels(shipped.receivers, loaded.notify_channels) == {}
        assert [o.name for o in loaded.export.outputs] == ["siem", "soc-ndjson"]
        assert loaded.console.ldap is not None and loaded.metrics.listen == "127.0.0.1:9464"
    else:
        assert loaded.hostname == "ws-court-0001" and loaded.detectors["outreach"] is True
