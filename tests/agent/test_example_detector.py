"""docs/architecture.md's five steps work: a tiny detector built by them runs in the real daemon.

The detector lives in ``tests/agent/example_detector/`` with the files step 1
names, and is registered as step 5 says (``agent.registry.register``, what
listing it in ``DETECTORS`` does). The tables are restored afterwards, so no
other test sees the ``example`` kinds.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent import registry
from agent.daemon import Daemon
from agent.errors import PolicyError
from agent.events import EVIDENCE_MODELS, Event
from agent.policy.cases import run_document_cases
from agent.policy.check import check_directory
from agent.policy.loader import load_policy_dir
from agent.policy.models import POLICY_KINDS
from agent.settings import AgentSettings
from agent.spool import Spool
from agent.testing import FakeCollector, eventually
from tests.agent.detectors.test_layout import layout_problems
from tests.agent.example_detector.evidence import CountEvidence
from tests.agent.example_detector.policy import ExamplePolicy
from tests.agent.example_detector.readers.counter import COUNT_FILE
from tests.agent.example_detector.spec import SPEC

EXAMPLE = Path(__file__).resolve().parent / "example_detector"


@pytest.fixture
def registered() -> Iterator[None]:
    """The example registered as step 5 says, and forgotten again after the test."""
    policy_kinds, evidence_models = dict(POLICY_KINDS), dict(EVIDENCE_MODELS)
    registry.register(SPEC)
    try:
        yield
    finally:
        POLICY_KINDS.clear()
        POLICY_KINDS.update(policy_kinds)
        EVIDENCE_MODELS.clear()
        EVIDENCE_MODELS.update(evidence_models)


def test_the_example_has_every_detectors_shape() -> None:
    assert layout_problems(SPEC, EXAMPLE, "tests.agent.example_detector") == []


def test_registering_adds_its_kinds_and_cleaning_up_removes_them(
    registered: None,
) -> None:
    assert POLICY_KINDS["example"] is ExamplePolicy
    assert EVIDENCE_MODELS["example.count"] is CountEvidence
    assert registry.POLICY_KINDS is POLICY_KINDS and registry.EVIDENCE_MODELS is EVIDENCE_MODELS


def test_nothing_of_the_example_is_left_registered() -> None:
    assert "example" not in POLICY_KINDS and "example.count" not in EVIDENCE_MODELS


def test_its_policy_file_passes_policy_check_and_its_cases(
    registered: None, tmp_path: Path
) -> None:
    shutil.copy(EXAMPLE / "example.yaml", tmp_path / "example.yaml")
    result = check_directory(tmp_path)
    assert result.issues == [], "\n".join(issue.render() for issue in result.issues)
    document = load_policy_dir(tmp_path, required={"example"}).section("example")
    assert isinstance(document, ExamplePolicy)
    outcomes = run_document_cases(SPEC, document)
    assert [o.case for o in outcomes] == ["fires-at-the-threshold", "silent-below-it"]
    assert all(o.passed for o in outcomes), [o.problem for o in outcomes]


def test_without_registering_the_kind_is_unknown(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE / "example.yaml", tmp_path / "example.yaml")
    with pytest.raises(PolicyError, match="unknown policy kind 'example'"):
        load_policy_dir(tmp_path)


def test_its_finding_lands_in_the_spool_with_typed_evidence(
    registered: None, enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """The real daemon reads the policy, starts the source, runs the detector and spools."""
    shutil.copy(EXAMPLE / "example.yaml", enrolled.policy_dir / "example.yaml")
    (enrolled.data_dir / COUNT_FILE).write_text("5\n")
    collector.reachable = False  # events stay in the spool, where the test reads them

    def spooled(spool: Spool | None) -> list[Event]:
        rows = spool.batch(1000, 16 * 1024 * 1024) if spool is not None else []
        return [Event.model_validate_json(body) for _id, _seq, body in rows]

    async def scenario() -> int:
        daemon = Daemon(enrolled, registry=[SPEC], transport=collector.transport(),
                        handle_signals=False)
        task = asyncio.create_task(daemon.run())
        await eventually(
            lambda: task.done() or any(e.kind == "example.count" for e in spooled(daemon.spool)),
            30,
        )
        daemon.request_stop("test over")
        return await task

    with capture_logs():
        assert asyncio.run(asyncio.wait_for(scenario(), 60)) == 0
    with Spool(enrolled.spool_path, agent_id=None, host="ws-test", max_bytes=1 << 24) as spool:
        (event,) = [e for e in spooled(spool) if e.kind == "example.count"]
    assert event.rule_id == "example.count-high"
    assert event.severity == "medium"
    assert event.typed_evidence() == CountEvidence(count=5, min_count=3)
