"""Escalation steps and their waits: the pure part, no store."""

from __future__ import annotations

from datetime import timedelta

from collector.routing.escalation import next_step, step_wait
from collector.routing.policy import Escalation
from tests.collector.routing.test_matching import context

KEY_PERIOD_NIGHT = "2026-10-02T03:00:00+08:00"  # National Day holiday
ORDINARY_EVENING = "2026-11-03T18:30:00+08:00"


def chain(repeat: int = 1, **last_step: object) -> Escalation:
    return Escalation.model_validate({"repeat": repeat, "steps": [
        {"notify": "on_duty", "wait_s": 900, "key_period_wait_s": 300},
        {"notify": "backup", "wait_s": 600, "key_period_wait_s": 120},
        {"notify": "leader", **last_step},
    ]})


def test_a_key_period_shortens_each_wait() -> None:
    escalation = chain()
    assert step_wait(context(ORDINARY_EVENING), escalation, 1) == timedelta(seconds=600)
    assert step_wait(context(KEY_PERIOD_NIGHT), escalation, 1) == timedelta(seconds=120)


def test_steps_run_in_order_then_wrap_repeat_times_then_end() -> None:
    ctx = context(ORDINARY_EVENING)
    escalation = chain(repeat=1)
    walked = []
    step: int | None = 0
    loop = 0
    while step is not None:
        walked.append((step, loop))
        step, loop = next_step(ctx, escalation, step, loop)
    assert walked == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]


def test_a_step_outside_its_window_is_passed_over() -> None:
    escalation = chain(repeat=0, active_in=["office_hours"])
    assert next_step(context(ORDINARY_EVENING), escalation, 1, 0) == (None, 1)
    assert next_step(context("2026-11-03T10:00:00+08:00"), escalation, 1, 0) == (2, 0)
