"""The ECS mapping, CEF lines and RFC 5424 framing: what a SIEM reads from each record."""

from __future__ import annotations

import json
import re
import typing
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agent.events import Event, Evidence, Severity
from agent.registry import EVIDENCE_MODELS
from collector.export.cef import KIND_NAMES, escape_header, escape_value, to_cef
from collector.export.config import OutputSettings
from collector.export.ecs import (
    EVIDENCE_FIELDS,
    AlertChangeRecord,
    To,
    alert_change_to_ecs,
    event_to_ecs,
)
from collector.export.transport import octet_framed, syslog_message

DOCS = Path(__file__).resolve().parents[3] / "docs" / "ecs.md"
NOW = datetime(2026, 10, 1, 3, 0, tzinfo=UTC)


def make_event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(), "seq": 7, "time": NOW, "agent_id": uuid.uuid4(), "host": "ws-101",
        "kind": "agent.test", "severity": "low", "summary": "测试事件", "evidence": {"note": "x"},
    }
    fields.update(overrides)
    return Event.model_validate(fields)


FLOW = {
    "protocol": "TCP", "local_address": "10.1.2.3", "local_port": 50000,
    "remote_address": "203.0.113.9", "remote_port": 443, "first_seen": NOW.isoformat(),
    "last_seen": NOW.isoformat(), "count": 2, "interface": "wlan0",
    "process": {"pid": 42, "name": "curl", "exe": "/usr/bin/curl", "user": "clerk"},
}


def test_core_fields_map() -> None:
    """The fields a SIEM expects of every event."""
    event = make_event(rule_id="agent.silent", severity="high")
    ecs = event_to_ecs(event)
    assert ecs["event"]["id"] == str(event.id)
    assert ecs["event"]["kind"] == "alert"
    assert ecs["event"]["severity"] == 73
    assert ecs["event"]["sequence"] == 7
    assert ecs["event"]["dataset"] == "courtguard.agent"
    assert ecs["rule"]["id"] == "agent.silent"
    assert ecs["host"]["name"] == "ws-101"
    assert ecs["log"]["level"] == "high"
    assert ecs["@timestamp"] == "2026-10-01T03:00:00+00:00"
    assert make_event(severity="info", seq=None).kind == "agent.test"
    assert "sequence" not in event_to_ecs(make_event(seq=None))["event"]


def test_flow_evidence_fills_network_fields() -> None:
    ecs = event_to_ecs(make_event(kind="outreach.flow", severity="high", evidence=FLOW))
    assert ecs["source"] == {"ip": "10.1.2.3", "port": 50000}
    assert ecs["destination"] == {"ip": "203.0.113.9", "port": 443}
    assert ecs["network"]["transport"] == "tcp"
    assert ecs["process"]["pid"] == 42 and ecs["process"]["executable"] == "/usr/bin/curl"
    assert ecs["user"]["name"] == "clerk"
    assert ecs["event"]["start"] == NOW.isoformat()
    assert ecs["courtguard"]["evidence"] == FLOW  # the whole evidence stays


def _field_type(model: type[BaseModel], name: str) -> Any:
    info = model.model_fields.get(name)
    assert info is not None, f"{model.__name__} has no field {name}"
    return info.annotation


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


@pytest.mark.parametrize("kind", sorted(EVIDENCE_MODELS))
def test_every_registered_kind_maps(kind: str) -> None:
    """Each kind's evidence model has a mapping, and every field it names exists."""
    model = EVIDENCE_MODELS[kind]
    assert model in EVIDENCE_FIELDS, f"{model.__name__} ({kind}) has no ECS mapping"
    for path, target in EVIDENCE_FIELDS[model].items():
        current: type[BaseModel] = model
        *parents, leaf = path.split(".")
        for part in parents:
            inner = _model_in(_field_type(current, part))
            assert inner is not None, f"{model.__name__}.{path}: {part} is not an object"
            current = inner
        _field_type(current, leaf)
        field = target.field if isinstance(target, To) else target
        assert re.fullmatch(r"[a-z_@]+(\.[a-z0-9_]+)*", field), field
    assert kind in KIND_NAMES, f"{kind} has no Chinese name for CEF"


def test_docs_describe_every_kind_and_mapping() -> None:
    """docs/ecs.md names every kind and every evidence field's ECS home."""
    text = DOCS.read_text(encoding="utf-8")
    for kind, model in EVIDENCE_MODELS.items():
        assert f"`{kind}`" in text, f"docs/ecs.md does not mention {kind}"
        for path, target in EVIDENCE_FIELDS[model].items():
            field = target.field if isinstance(target, To) else target
            assert f"`{path}` → `{field}`" in text, f"docs/ecs.md: {kind} {path} → {field}"


def test_no_evidence_model_is_left_out() -> None:
    """Models mapped but no longer registered are stale entries."""
    registered: set[type[Evidence]] = set(EVIDENCE_MODELS.values())
    assert set(EVIDENCE_FIELDS) == registered


def test_alert_change_maps() -> None:
    record = AlertChangeRecord(
        change_id=5, change="status_changed", at=NOW, alert_id=9, kind="account.login",
        severity=Severity.MEDIUM, rule_id="account.off_hours", host="ws-1",
        agent_id=str(uuid.uuid4()), account="wb_zhang", title="外包账号越界登录",
        status="acknowledged", assignee="alice", count=3, first_seen=NOW, last_seen=NOW)
    ecs = alert_change_to_ecs(record)
    assert ecs["event"]["action"] == "alert.status_changed"
    assert ecs["event"]["dataset"] == "courtguard.alert"
    assert ecs["user"]["name"] == "wb_zhang"
    assert ecs["courtguard"]["alert"]["status"] == "acknowledged"
    cef = to_cef(ecs)
    assert cef.startswith("CEF:0|courtguard|courtguard|")
    assert "|alert.status_changed|告警状态变更|5|" in cef
    assert "cs3Label=alertStatus cs3=acknowledged" in cef


def test_cef_escaping() -> None:
    assert escape_header("a|b\\c\nd") == "a\\|b\\\\c d"
    assert escape_value("a=b\\c\r\nd\ne|f") == "a\\=b\\\\c\\nd\\ne|f"


def _extension(cef: str) -> dict[str, str]:
    """Parse a CEF extension the way a SIEM does: split on unescaped `` key=``."""
    header_end = [m.end() for m in re.finditer(r"(?<!\\)\|", cef)][6]
    ext = cef[header_end:]
    pairs = re.split(r" (?=[A-Za-z0-9]+=)", ext)
    out = {}
    for pair in pairs:
        key, value = re.split(r"(?<!\\)=", pair, maxsplit=1)
        out[key] = value.replace("\\=", "=").replace("\\n", "\n").replace("\\\\", "\\")
    return out


def test_cef_line_round_trips_hostile_text() -> None:
    """Pipes, equals signs, backslashes and line breaks in text survive a SIEM's parser."""
    summary = "外联 a|b=c\\d\n第二行"
    cef = to_cef(event_to_ecs(make_event(kind="outreach.flow", severity="critical",
                                         summary=summary, evidence=FLOW)))
    assert "\n" not in cef and "\r" not in cef
    assert cef.split("|")[:7] == ["CEF:0", "courtguard", "courtguard", cef.split("|")[3],
                                  "outreach.flow", "违规外联连接", "10"]
    ext = _extension(cef)
    assert ext["msg"] == summary
    assert ext["src"] == "10.1.2.3" and ext["dpt"] == "443" and ext["proto"] == "tcp"
    assert ext["rt"] == str(int(NOW.timestamp() * 1000))
    assert json.loads(ext["cs6"]) == FLOW


def test_syslog_message_and_octet_framing() -> None:
    output = OutputSettings(name="siem", type="syslog-tls", host="127.0.0.1", facility=13)
    message = syslog_message(output, time=NOW, host="ws 中文", msgid="outreach.flow",
                             severity="high", body="CEF:0|x")
    header, body = message.split(b"\xef\xbb\xbf", 1)
    assert header == b"<107>1 2026-10-01T03:00:00.000000Z ws___ courtguard - outreach.flow - "
    assert body == b"CEF:0|x"
    framed = octet_framed(message)
    length, rest = framed.split(b" ", 1)
    assert int(length) == len(rest) == len(message)


def test_outputs_from_collector_toml(tmp_path: Path) -> None:
    """``[[export.outputs]]`` tables become outputs; a broken one names its problem."""
    from collector.errors import ConfigError
    from collector.settings import load_settings

    config = tmp_path / "collector.toml"
    config.write_text(
        '[[export.outputs]]\nname = "soc"\ntype = "syslog-tls"\nformat = "cef"\n'
        'host = "siem.court.example"\nseverities = ["high", "critical"]\n'
        'pillars = ["outreach"]\nkinds = ["outreach.*"]\n'
        '[[export.outputs]]\nname = "province"\ntype = "https-ndjson"\n'
        'url = "https://198.51.100.7/ingest"\n')
    soc, province = load_settings(config, data_dir=tmp_path).export.outputs
    assert soc.port == 6514 and soc.format == "cef" and province.format == "ecs"
    assert soc.takes("outreach.flow", Severity.HIGH)
    assert not soc.takes("outreach.flow", Severity.LOW)
    assert not soc.takes("account.login", Severity.HIGH)
    assert province.takes("account.login", Severity.INFO)
    assert not province.takes("agent.heartbeat", Severity.INFO)
    for broken, problem in (
        ('type = "syslog-tls"', "needs host"),
        ('type = "https-ndjson"\nurl = "http://198.51.100.7/"', "https:// url"),
        ('type = "https-ndjson"\nformat = "cef"\nurl = "https://198.51.100.7/"', "format = ecs"),
        ('type = "kafka"', "type"),
    ):
        config.write_text(f'[[export.outputs]]\nname = "x"\n{broken}\n')
        with pytest.raises(ConfigError, match=problem):
            load_settings(config, data_dir=tmp_path)
    config.write_text('[[export.outputs]]\nname = "a"\ntype = "syslog-tls"\nhost = "h"\n'
                      '[[export.outputs]]\nname = "a"\ntype = "syslog-tls"\nhost = "h"\n')
    with pytest.raises(ConfigError, match="repeat"):
        load_settings(config, data_dir=tmp_path)


def test_unreadable_ca_file_is_a_chinese_export_error(tmp_path: Path) -> None:
    from collector.errors import ExportError
    from collector.export.transport import transport_for

    output = OutputSettings(name="soc", type="syslog-tls", host="127.0.0.1",
                            ca_file=tmp_path / "missing-ca.pem")
    with pytest.raises(ExportError, match="soc 的证书文件无法读取"):
        transport_for(output)
