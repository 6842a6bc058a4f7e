"""`dr serve`'s front door and its worker process, over real sockets: a sure alert is answered by the
protocol itself and still becomes an incident; every other request answers as before; a killed
process of either kind loses nothing and leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from shared.bootstrap import Services
from shared.intake.azure_monitor import parse_alert
from shared.intake.json_body import decode_json
from shared.settings import Settings
from tests.conftest import REFDATA
from tests.e2e.conftest import DR, KEY, Responder

ALERT = (REFDATA / "azure_monitor" / "cas_testaction_metric_static_fired.json").read_bytes()


def alert(n: int, **essentials: str) -> bytes:
    """The reference alert as a distinct one (its own id and rule, so its own incident)."""
    payload = json.loads(ALERT)
    payload["data"]["essentials"]["alertId"] += f"-fast-{n}"
    payload["data"]["essentials"]["alertRule"] += f"-fast-{n}"
    payload["data"]["essentials"].update(essentials)
    return json.dumps(payload).encode()


def full_path_id(body: bytes) -> str:
    """The id the full parser gives the alert's signal."""
    owner = Services(Settings(data_dir=Path("/nonexistent"))).owner()
    return parse_alert(decode_json(body, "application/json"), owner).id


def raw_post(body: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return (
        b"POST /api/alerts?code=" + KEY.encode() + b" " + version + b"\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def read_answers(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """`count` HTTP answers off the socket, in the order they came."""
    data, answers = b"", []
    sock.settimeout(10)
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:])
            length = int(headers["content-length"])
            if len(rest) >= length:
                answers.append((int(lines[0].split()[1]), headers, rest[:length]))
                data = rest[length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return answers


def worker_of(responder: Responder) -> psutil.Process:
    """The front's worker process (multiprocessing's resource tracker is a child too)."""
    children = psutil.Process(responder.process.pid).children()
    workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
    assert len(workers) == 1, [c.cmdline() for c in children]
    return workers[0]


def test_a_sure_alert_is_answered_as_the_full_path_would_and_becomes_an_incident(
    responder: Responder,
) -> None:
    body = alert(1)
    fast = responder.post("/alerts", body)
    # text/json is JSON to the full parser, but not what the front door answers itself.
    full = responder.post("/alerts", alert(2), "text/json")

    assert fast.status_code == full.status_code == 202
    assert fast.json() == {"accepted": 1, "signals": [full_path_id(body)]}
    assert full.json() == {"accepted": 1, "signals": [full_path_id(alert(2))]}
    assert fast.headers["content-type"] == full.headers["content-type"]
    assert len(responder.incidents_of(fast)) == 1
    assert len(responder.incidents_of(full)) == 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (alert(3, severity="Sev9"), 422, "invalid_field"),
        (alert(3, monitorCondition=" fired "), 202, None),  # a spelling only the full path folds
        (alert(3)[:-5], 400, "malformed_json"),
    ],
    ids=["bad severity", "a spelling only the full path folds", "cut short"],
)
def test_what_is_not_sure_takes_the_full_path(
    responder: Responder, body: bytes, status: int, error: str | None
) -> None:
    answer = responder.post("/alerts", body)

    assert answer.status_code == status, answer.text
    if error:
        assert answer.json()["error"] == error
    else:
        assert len(responder.incidents_of(answer)) == 1


def test_a_second_content_type_is_read_as_the_full_path_reads_it(responder: Responder) -> None:
    body = alert(40)
    with socket.create_connection(("127.0.0.1", responder.port)) as sock:
        sock.sendall(raw_post(body).replace(b"\r\n\r\n", b"\r\nContent-Type: text/plain\r\n\r\n", 1))
        [(status, _, answer)] = read_answers(sock, 1)

    assert status == 415
    assert json.loads(answer)["error"] == "unsupported_media_type"


def test_a_signal_too_large_for_a_queue_message_is_413_not_a_202(responder: Responder) -> None:
    # 48 KiB of é in the resource id: the signal keeps it twice, each é escaped to 6 bytes.
    target = "/subscriptions/1/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/"
    payload = json.loads(alert(41))
    payload["data"]["essentials"]["alertTargetIDs"] = [target + "\u00e9" * 24_000]
    answer = responder.post("/alerts", json.dumps(payload, ensure_ascii=False).encode())

    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "signal_too_large"


def test_a_wrong_key_is_refused_even_for_a_sure_alert(responder: Responder) -> None:
    answer = responder.client.post(
        "/alerts", content=alert(4), params={"code": KEY + "x"}, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {"x-functions-key": KEY}),
        ({"code": KEY}, {}),
        ({"other": "1", "code": KEY}, {}),
    ],
    ids=["the key in its header", "the key in the query", "the key after another parameter"],
)
def test_the_key_is_read_where_the_host_reads_it(
    responder: Responder, params: dict[str, str], headers: dict[str, str]
) -> None:
    answer = responder.client.post(
        "/alerts", content=alert(9), params=params, headers={"content-type": "application/json", **headers}
    )
    assert answer.status_code == 202, answer.text


def test_a_key_with_escapes_in_the_query_is_read_by_the_full_path(responder: Responder) -> None:
    escaped = "".join(f"%{ord(c):02X}" for c in KEY)  # the same key, every character %-escaped
    with socket.create_connection(("127.0.0.1", responder.port)) as sock:
        sock.sendall(raw_post(alert(30)).replace(b"code=" + KEY.encode(), b"code=" + escaped.encode()))
        [(status, _, answer)] = read_answers(sock, 1)

    assert status == 202
    assert json.loads(answer)["signals"] == [full_path_id(alert(30))]


def test_pipelined_alerts_are_answered_in_order(responder: Responder) -> None:
    bad = alert(6, severity="Sev9")  # the full path's, between two sure ones
    with socket.create_connection(("127.0.0.1", responder.port)) as sock:
        sock.sendall(raw_post(alert(5)) + raw_post(bad) + raw_post(alert(7)))
        answers = read_answers(sock, 3)

    assert [status for status, _, _ in answers] == [202, 422, 202]
    assert json.loads(answers[0][2])["signals"] == [full_path_id(alert(5))]
    assert json.loads(answers[2][2])["signals"] == [full_path_id(alert(7))]


def test_an_http_1_0_request_is_answered_and_the_connection_closed(responder: Responder) -> None:
    with socket.create_connection(("127.0.0.1", responder.port)) as sock:
        sock.sendall(raw_post(alert(8), b"HTTP/1.0"))
        [(status, headers, _)] = read_answers(sock, 1)
        assert sock.recv(1) == b""  # closed by the server

    assert status == 202
    assert headers["connection"] == "close"


def test_kill_9_after_the_202_loses_nothing_and_leaves_no_worker(
    start_responder: Callable[..., Responder], tmp_path: Path
) -> None:
    data_dir = tmp_path / "killed"
    first = start_responder(data_dir)
    worker = worker_of(first)
    worker.suspend()  # nothing drains: the alerts are only in the inbox when the front dies
    answers = [first.post("/alerts", alert(10 + n)) for n in range(5)]
    answers.append(first.post("/alerts", alert(15), "text/json"))  # one the full path takes
    assert [a.status_code for a in answers] == [202] * 6
    with sqlite3.connect(f"file:{data_dir / 'inbox.sqlite'}?mode=ro", uri=True) as inbox:
        kept = inbox.execute("SELECT COUNT(*) FROM inbox WHERE length(body) > 0").fetchone()[0]
    assert kept == 5  # the sure ones, answered by the front door; the other went to the queue
    first.process.kill()
    first.process.wait()
    with contextlib.suppress(psutil.NoSuchProcess):  # the kernel may have killed it already
        worker.resume()
    worker.wait(5)  # it dies with the front (or notices the front is gone) and leaves nothing

    second = start_responder(data_dir)
    assert all(len(second.incidents_of(a)) == 1 for a in answers)


def test_the_status_counts_what_waits_in_the_inbox(responder: Responder) -> None:
    worker = worker_of(responder)
    worker.suspend()  # nothing drains, as when the worker is down or far behind
    try:
        answers = [responder.post("/alerts", alert(30 + n)) for n in range(3)]
        assert [a.status_code for a in answers] == [202] * 3
        over_http = responder.get("/status").json()["queues"]
        done = subprocess.run(
            [str(DR), "status", "--data-dir", str(responder.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=responder.data_dir.parent,
            check=False,
        )
    finally:
        worker.resume()
    assert list(over_http)[:2] == ["inbox", "intake"]
    assert over_http["inbox"] == {"ready": 3, "scheduled": 0, "in_flight": 0, "dead_lettered": 0}
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\s*inbox\s+3\s+0\s+0\s+0\s*$", done.stdout, re.MULTILINE), done.stdout
    responder.wait_for(lambda: responder.get("/status").json()["queues"]["inbox"]["ready"] == 0, "drained")


def test_a_function_waiting_on_a_locked_store_holds_neither_health_nor_the_front_door(
    responder: Responder,
) -> None:
    locker = sqlite3.connect(responder.data_dir / "queue.sqlite3", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process holds the queue file's write lock
    with ThreadPoolExecutor(1) as pool:
        try:
            # text/json takes the full path, whose one write waits on the lock (10 s at most).
            held = pool.submit(responder.post, "/alerts", alert(40), "text/json")
            time.sleep(0.3)  # it is inside the function now
            health = responder.get("/health")
            sure = responder.post("/alerts", alert(41))
            waiting = not held.done()
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        answer = held.result(timeout=30)
    assert waiting  # both were answered while the other request still waited on the lock
    assert (health.status_code, sure.status_code, answer.status_code) == (200, 202, 202)


def test_a_dead_worker_is_started_again_and_nothing_waits_for_ever(
    start_responder: Callable[..., Responder],
) -> None:
    responder = start_responder()
    worker = worker_of(responder)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(5)
    answer = responder.post("/alerts", alert(20))  # the front still answers, into the inbox

    assert answer.status_code == 202
    assert len(responder.incidents_of(answer)) == 1
    assert worker_of(responder).pid != worker.pid
    assert re.search(r"worker process exited with -9; starting it again", responder.log.read_text())


def test_sigterm_stops_both_processes_as_ctrl_c_does(start_responder: Callable[..., Responder]) -> None:
    responder = start_responder()
    worker = worker_of(responder)
    responder.process.send_signal(signal.SIGTERM)

    assert responder.process.wait(15) == 0
    worker.wait(1)
    log = responder.log.read_text()
    assert "DR Responder stopped" in log
    assert "did not stop" not in log  # the worker had its SIGTERM and its time, not a kill


def test_a_request_held_when_the_server_stops_is_still_answered(
    start_responder: Callable[..., Responder],
) -> None:
    responder = start_responder()
    request = raw_post(alert(42))
    with socket.create_connection(("127.0.0.1", responder.port)) as sock:
        sock.sendall(request[:-100])  # headers and most of the body: held, not yet whole
        time.sleep(0.3)
        responder.process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        sock.sendall(request[-100:])
        [(status, headers, _)] = read_answers(sock, 1)

    assert status == 202
    assert headers["connection"] == "close"
    assert responder.process.wait(15) == 0


def test_ctrl_c_stops_both_processes(start_responder: Callable[..., Responder]) -> None:
    responder = start_responder()
    worker = worker_of(responder)
    responder.process.send_signal(signal.SIGINT)

    assert responder.process.wait(15) == 0
    worker.wait(1)  # already gone: the front stopped it before it exited
    assert "DR Responder stopped" in responder.log.read_text()
    assert not worker.is_running()
