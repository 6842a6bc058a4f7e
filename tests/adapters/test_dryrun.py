"""Dry-run pager and chat: the whole request in their JSONL files, one line of it in the log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from shared.adapters.dryrun import DryRunChat, DryRunPager, DryRunRecorder
from shared.paging.card import card
from shared.paging.page import resolve_event, trigger_event
from shared.triage.assessment import assess
from shared.triage.correlation import correlate
from shared.triage.policy import load_policy
from tests.factories import signal

POLICY = load_policy()


def _incident():  # type: ignore[no-untyped-def]
    s = signal(azure_severity="Sev0", title="Cosmos DB cosmos-amicis-ikea-dev is Unavailable")
    outcome = correlate(None, s, assess(s, POLICY), "2026-11-25T10:00:00.000Z", POLICY)
    assert outcome is not None
    return outcome.incident


def test_a_card_is_one_log_line_and_a_whole_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shared.adapters.dryrun")
    chat = DryRunChat(DryRunRecorder(tmp_path / "slack.jsonl", "slack"))
    incident = _incident()
    text, blocks = card(incident, [])
    channel, ts = chat.post("#incidents", text, blocks)
    chat.update(channel, ts, text, blocks)
    chat.post(channel, "Acknowledged by Ben\nin PagerDuty", None, thread_ts=ts)

    logged = [r.getMessage() for r in caplog.records]
    assert logged == [
        f"dry-run slack chat.postMessage #incidents: {text}",
        f"dry-run slack chat.update #incidents {ts}: {text}",
        f"dry-run slack chat.postMessage #incidents thread {ts}: Acknowledged by Ben in PagerDuty",
    ]
    assert logged[0].startswith("dry-run slack chat.postMessage #incidents: [SEV1] ")
    assert all("blocks" not in line and "\n" not in line for line in logged), "never the whole card"
    records = [json.loads(line) for line in (tmp_path / "slack.jsonl").read_text().splitlines()]
    assert records[0]["payload"]["blocks"] == blocks, "the file keeps the whole request"
    assert [r["operation"] for r in records] == ["chat.postMessage", "chat.update", "chat.postMessage"]


def test_a_page_is_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shared.adapters.dryrun")
    pager = DryRunPager(DryRunRecorder(tmp_path / "pagerduty.jsonl", "pagerduty"))
    incident = _incident()
    pager.send(trigger_event(incident, [{"href": "https://portal.azure.com/x", "text": "resource"}]), "")
    pager.send(resolve_event(incident), "")
    trigger, resolve = (r.getMessage() for r in caplog.records)
    assert trigger.startswith(f"dry-run pagerduty trigger critical {incident.id}: [SEV1] ")
    assert resolve == f"dry-run pagerduty resolve {incident.id}"
    assert len(DryRunRecorder(tmp_path / "pagerduty.jsonl", "pagerduty").sent()) == 2


def test_a_long_summary_is_cut(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shared.adapters.dryrun")
    DryRunRecorder(tmp_path / "x.jsonl", "slack").record("chat.postMessage", {}, "#c: " + "x" * 1000)
    (line,) = (r.getMessage() for r in caplog.records)
    assert len(line) < 250 and line.endswith("…")
