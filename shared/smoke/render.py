"""The smoke report as the checklist a person reads."""

from __future__ import annotations

from shared.smoke.run import FAILED, PASSED, STEPS, SmokeReport

MARKS = {PASSED: "✓", FAILED: "✗"}
NAME_WIDTH = max(len(name) for name in STEPS)


def render_smoke(report: SmokeReport) -> str:
    """One line a step (mark, name, seconds, what was seen), then the verdict."""
    lines = [f"dr smoke against {report.url} (alert rule {report.rule})"]
    for step in report.steps:
        mark = MARKS.get(step.status, "-")
        lines.append(f"  {mark} {step.name:<{NAME_WIDTH}} {step.seconds:6.2f} s  {step.detail}".rstrip())
    passed = sum(1 for s in report.steps if s.status == PASSED)
    if report.passed:
        lines.append(f"passed: {passed} of {len(report.steps)} steps")
    else:
        failed = sum(1 for s in report.steps if s.status == FAILED)
        skipped = len(report.steps) - passed - failed
        lines.append(f"FAILED: {failed} failed, {skipped} skipped, {passed} passed")
    if report.incident_id:
        lines.append(f"incident {report.incident_id}")
    return "\n".join(lines) + "\n"
