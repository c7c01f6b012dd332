"""Scanning in worker processes under memory and CPU limits."""

from __future__ import annotations

from pathlib import Path

from agent.detectors.documents.checker.worker import ScanPool


def test_worker_killed_by_its_limits_is_one_error_not_a_crash(
    tmp_path: Path, documents_policy: object
) -> None:
    """A file that exhausts a worker's CPU budget kills that worker; the others are reported."""
    slow = tmp_path / "slow.txt"
    line = "被告人张三，男，1990年5月1日出生，住河南省郑州市金水区文化路88号，手机13812345678。\n"
    slow.write_text(line * 60_000)  # seconds of CPU to scan; the budget below is one second
    good = tmp_path / "good.txt"
    good.write_text("民事判决书\n审判员  孙立\n")
    pool = ScanPool(documents_policy, workers=2, cpu_seconds=1)  # type: ignore[arg-type]  # the fixture is annotated object
    reports = {Path(r["path"]).name: r for r in pool.scan([str(slow), str(good)])}
    assert reports["good.txt"]["verdict"] == "publishable"
    assert reports["slow.txt"]["verdict"] is None
    assert "上限" in reports["slow.txt"]["error"]
