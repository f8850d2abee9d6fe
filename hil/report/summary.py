"""The one-screen terminal summary of a result set."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any


def summarize(records: Sequence[dict[str, Any]], report: str | None) -> tuple[str, bool]:
    """Text for the terminal and whether every plan passed."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in records:  # oldest first: a re-run of a plan replaces its earlier record
        latest[rec["plan_id"] + rec.get("instance", "")] = rec
    counts = Counter(r["status"] for r in latest.values())
    width = max([len(p) for p in latest] + [4])
    lines = ["", "hil certification summary", "=" * 25]
    if latest:
        bench = next(iter(latest.values()))
        lines.append(f"bench: {bench['bench_id']}  (time scale {bench['time_scale']:g})")
    for plan_id, rec in sorted(latest.items()):
        status = rec["status"].upper()
        title = rec["title"]
        line = f"  {plan_id:<{width}}  {status:<7}  {title}"
        if rec["status"] != "passed" and rec.get("reason"):
            line += f"\n  {'':<{width}}           ↳ {rec['reason']}"
        lines.append(line)
    total = len(latest)
    passed = counts.get("passed", 0)
    lines.append("")
    lines.append(
        f"plans: {total}  passed: {passed}  failed: {counts.get('failed', 0)}  "
        f"broken: {counts.get('broken', 0)}  skipped: {counts.get('skipped', 0)}"
        + (f"  invalid: {counts['invalid']}" if counts.get("invalid") else "")
    )
    if report:
        lines.append(f"report: {report}")
    ok = total > 0 and passed == total
    lines.append("verdict: " + ("ALL PLANS PASSED" if ok else "NOT ALL PLANS PASSED"))
    return "\n".join(lines) + "\n", ok
