"""The inbox and its drain on real SQLite files: ids keep rising, nothing is admitted twice, nothing
refused disappears, and a drain that starts over after a crash sends nothing again."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from shared.bootstrap import Services
from shared.intake.admission import INTAKE_QUEUE
from shared.localhost.drain import InboxDrain, admit_alerts
from shared.localhost.inbox import Inbox, Waiting
from shared.localhost.served import ServedServices
from shared.settings import Settings
from shared.status.replay import ReplayRefused, replay_dead_letter
from tests.conftest import REFDATA

ALERT = json.loads((REFDATA / "azure_monitor" / "cas_testaction_metric_static_fired.json").read_bytes())


def alert(n: int, description: str = "") -> bytes:
    payload = json.loads(json.dumps(ALERT))
    payload["data"]["essentials"]["alertId"] += f"-{n}"
    if description:
        payload["data"]["essentials"]["description"] = description
    return json.dumps(payload).encode()


def drained(inbox: Inbox, services: Services | Callable[[Sequence[Waiting]], None]) -> None:
    """Run a drain (the real admission, or `services` as one) until the inbox is empty, then stop it."""
    admit = admit_alerts(services) if isinstance(services, Services) else services
    stop = threading.Event()
    drain = InboxDrain(inbox, admit, stop)
    drain.start()
    deadline = time.monotonic() + 20
    while inbox.count() and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    drain.join(5)
    assert inbox.count() == 0


def test_forgetting_everything_does_not_reuse_ids(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    first = [inbox.append(b"{}") for _ in range(3)]
    inbox.forget(first[-1])
    later = inbox.append(b"{}")

    assert later > first[-1]
    assert [w.id for w in inbox.waiting(first[-1], 10)] == [later]
    assert inbox.count() == 1


def test_a_drain_admits_each_alert_once_even_when_it_starts_over(tmp_path: Path) -> None:
    services = Services(Settings(data_dir=tmp_path))
    inbox = Inbox(tmp_path)
    for n in range(3):
        inbox.append(alert(n))
    drained(inbox, services)
    # A crash before the drain forgot: the same rows are there again for the next drain.
    again = Inbox(tmp_path / "again")
    for n in range(3):
        again.append(alert(n))
    drained(again, services)

    assert services.queue.active_count(INTAKE_QUEUE) == 3  # type: ignore[attr-defined]


def test_what_the_full_path_refuses_is_dead_lettered_with_its_reason_and_the_rest_admitted(
    tmp_path: Path,
) -> None:
    services = Services(Settings(data_dir=tmp_path))
    inbox = Inbox(tmp_path)
    inbox.append(alert(1))
    inbox.append(b'{"schemaId": "somethingElse"}')
    inbox.append(alert(2, description="d" * 300_000))  # a signal too large for a queue message
    inbox.append(alert(3))
    drained(inbox, services)

    assert services.queue.active_count(INTAKE_QUEUE) == 2  # type: ignore[attr-defined]
    dead = services.queue.dead_letters(INTAKE_QUEUE)  # type: ignore[attr-defined]
    assert sorted(d.reason for d in dead) == ["RefusedAfterAccepted"] * 2
    details = " ".join(d.description for d in dead)
    assert "unsupported_schema" in details and "signal_too_large" in details


def test_a_drain_outlives_an_unexpected_error_and_admits_the_batch_again(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    inbox.append(alert(1))
    calls: list[int] = []

    def admit(waiting: Sequence[Waiting]) -> None:
        calls.append(len(waiting))
        if len(calls) == 1:
            raise RuntimeError("a bug")

    drained(inbox, admit)

    assert calls[:2] == [1, 1]  # the same row again after the failure, and then forgotten


def test_a_refused_body_is_not_replayed_as_a_message_that_is_no_signal(tmp_path: Path) -> None:
    services = Services(Settings(data_dir=tmp_path))
    inbox = Inbox(tmp_path)
    inbox.append(b'{"schemaId": "somethingElse"}')
    drained(inbox, services)
    (dead,) = services.queue.dead_letters(INTAKE_QUEUE)  # type: ignore[attr-defined]

    with pytest.raises(ReplayRefused, match=r"raw body.*unsupported_schema.*POST the body to /api/alerts"):
        replay_dead_letter(services.queue_inspector, services.store, dead.message_id, services.clock())
    assert services.queue.active_count(INTAKE_QUEUE) == 0  # type: ignore[attr-defined]
    assert [d.message_id for d in services.queue.dead_letters(INTAKE_QUEUE)] == [dead.message_id]  # type: ignore[attr-defined]


def test_a_damaged_inbox_is_left_out_of_the_status_which_still_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "inbox.sqlite").write_bytes(b"not a database " * 100)
    counts = ServedServices(Settings(data_dir=tmp_path)).queue_inspector.counts([INTAKE_QUEUE])
    assert [c.queue for c in counts] == [INTAKE_QUEUE]
    assert "cannot be read" in caplog.text
