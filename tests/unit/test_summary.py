"""The terminal summary: one row per plan instance; a verdict only when all passed."""

from __future__ import annotations

from typing import Any

from hil.report.summary import summarize


def rec(plan: str, status: str, instance: str = "", started: float = 1.0) -> dict[str, Any]:
    return {
        "plan_id": plan,
        "instance": instance,
        "status": status,
        "title": f"plan {plan}",
        "reason": "step x: late" if status != "passed" else "",
        "bench_id": "b",
        "time_scale": 0.1,
        "started": started,
    }


def test_matrix_instances_are_separate_rows_and_reruns_replace() -> None:
    text, ok = summarize(
        [
            rec("E2", "passed", "[speed_kmh=16]"),
            rec("E2", "failed", "[speed_kmh=30]"),
            rec("E2", "passed", "[speed_kmh=30]", started=2.0),  # re-run
            rec("A1", "passed"),
        ],
        "r/index.html",
    )
    assert ok
    assert "E2[speed_kmh=16]" in text and "E2[speed_kmh=30]" in text
    assert "plans: 3  passed: 3" in text
    assert "report: r/index.html" in text


def test_any_failure_or_no_plan_is_not_a_pass() -> None:
    text, ok = summarize([rec("A1", "failed"), rec("N1", "passed")], None)
    assert not ok
    assert "↳ step x: late" in text and "NOT ALL PLANS PASSED" in text
    assert summarize([], None)[1] is False
