"""The console's words: every template word translated, English one click away."""

from __future__ import annotations

import re
from pathlib import Path

from collector.console import i18n
from tests.collector.conftest import TestClient
from tests.collector.console.conftest import login

TEMPLATES = Path(__file__).resolve().parents[3] / "collector" / "console" / "templates"


def test_every_template_word_is_translated() -> None:
    used: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        used.update(re.findall(r'\bt\("([^"]+)"\)', path.read_text()))
    for source in (Path(__file__).resolve().parents[2] / "collector" / "console").glob("*.py"):
        if source.name == "i18n.py":  # its docstring shows the call as an example
            continue
        used.update(re.findall(r'\bt\("([^"]+)"\)', source.read_text()))
    missing = sorted(key for key in used if not i18n.has(key))
    assert missing == []


def test_english_is_available(app_client: TestClient) -> None:
    login(app_client, "zhang")
    assert "<h1>告警</h1>" in app_client.get("/console/alerts").text
    app_client.get("/console/lang/en?next=/console/alerts")
    assert "<h1>Alerts</h1>" in app_client.get("/console/alerts").text


def test_a_verdict_reads_the_same_in_the_cli_and_on_every_page() -> None:
    from agent.detectors.documents.checker.scanner import VERDICT_LABELS
    from collector.doccheck.work import VERDICT_WORDS

    assert VERDICT_WORDS == VERDICT_LABELS
    for code, words in VERDICT_LABELS.items():
        assert i18n.ZH[f"verdict.{code}"] == words
        assert i18n.ZH[f"value.verdict.{code}"] == words
    assert VERDICT_LABELS["needs_redaction"] == "需处理后公开"
