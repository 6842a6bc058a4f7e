"""PagerDutyRest with the real `pagerduty` RestApiV2Client against a local REST API v2 stub (over HTTPS)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from shared.adapters import pagerduty_rest
from shared.adapters.pagerduty_rest import PagerDutyRest
from shared.errors import Rejected, Transient
from shared.ports import OnCall
from tests.stubs import PagerDutyRestStub

TOKEN = "u+Zx9pdRestT0kenSecret"
SERVICE = "PSVC001"
FROM = "dr-responder@example.com"


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[PagerDutyRestStub]:
    with PagerDutyRestStub(token=TOKEN) as started:
        assert started.ca_file
        monkeypatch.setenv("SSL_CERT_FILE", started.ca_file)  # the client takes only https://
        started.add_service(SERVICE, escalation_policy_id="EP1")
        started.add_service("PSVC002", escalation_policy_id="EP2")
        started.add_on_call("EP1", "U1", "Ada Lovelace", "ada@example.com", escalation_level=1)
        started.add_on_call("EP1", "U2", "Grace Hopper", "grace@example.com", escalation_level=2)
        started.add_on_call("EP2", "U3", "Someone Else", "else@example.com", escalation_level=1)
        yield started


@pytest.fixture
def directory(stub: PagerDutyRestStub) -> PagerDutyRest:
    return PagerDutyRest(TOKEN, stub.url, SERVICE, FROM)


def test_incident_id_looks_the_dedup_key_up_as_incident_key(
    stub: PagerDutyRestStub, directory: PagerDutyRest
) -> None:
    stub.add_incident("inc-20261125-aaaaaaaaaa", incident_id="Q0OTHER")
    stub.add_incident("inc-20261125-0a1b2c3d4e", incident_id="Q1ABCDEF")

    found = directory.incident_id("inc-20261125-0a1b2c3d4e")

    assert found == "Q1ABCDEF"
    [request] = stub.requests
    assert (request.method, request.path) == ("GET", "/incidents")
    assert request.query == {"incident_key": ["inc-20261125-0a1b2c3d4e"]}
    assert request.header("Authorization") == f"Token token={TOKEN}"
    assert request.header("Accept") == "application/vnd.pagerduty+json;version=2"


def test_incident_id_is_none_when_pagerduty_has_no_such_incident(directory: PagerDutyRest) -> None:
    assert directory.incident_id("inc-unknown") is None


def test_add_note_posts_the_wrapped_note_from_the_configured_user(
    stub: PagerDutyRestStub, directory: PagerDutyRest
) -> None:
    stub.add_incident("inc-1", incident_id="Q1ABCDEF")

    directory.add_note("Q1ABCDEF", "cosmos-failover on cosmos-amicis-ikea-dev: done, verified")

    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/incidents/Q1ABCDEF/notes")
    assert request.header("From") == FROM
    assert request.header("Content-Type") == "application/json"
    assert request.json == {"note": {"content": "cosmos-failover on cosmos-amicis-ikea-dev: done, verified"}}
    assert [n["content"] for n in stub.notes("Q1ABCDEF")] == [
        "cosmos-failover on cosmos-amicis-ikea-dev: done, verified"
    ]


def test_a_long_note_is_cut_to_pagerdutys_limit(stub: PagerDutyRestStub, directory: PagerDutyRest) -> None:
    stub.add_incident("inc-1", incident_id="Q1ABCDEF")

    directory.add_note("Q1ABCDEF", "n" * 30_000)

    assert len(stub.notes("Q1ABCDEF")[0]["content"]) == 25_000


def test_a_note_without_a_from_address_is_rejected_with_pagerdutys_words(stub: PagerDutyRestStub) -> None:
    stub.add_incident("inc-1", incident_id="Q1ABCDEF")
    directory = PagerDutyRest(TOKEN, stub.url, SERVICE, None)

    with pytest.raises(Rejected) as caught:
        directory.add_note("Q1ABCDEF", "text")

    assert "400" in str(caught.value) and "From header" in str(caught.value)
    assert stub.requests[0].header("From") is None
    assert stub.notes("Q1ABCDEF") == []


def test_a_note_on_an_unknown_incident_is_rejected(directory: PagerDutyRest) -> None:
    with pytest.raises(Rejected, match="404"):
        directory.add_note("QNOSUCH", "text")


def test_on_call_reads_the_services_escalation_policy_then_its_on_calls(
    stub: PagerDutyRestStub, directory: PagerDutyRest
) -> None:
    people = directory.on_call()

    assert people == [
        OnCall(user_id="U1", name="Ada Lovelace", email="ada@example.com", escalation_level=1),
        OnCall(user_id="U2", name="Grace Hopper", email="grace@example.com", escalation_level=2),
    ]
    service, on_calls = stub.requests
    assert (service.method, service.path) == ("GET", f"/services/{SERVICE}")
    assert (on_calls.method, on_calls.path) == ("GET", "/oncalls")
    assert on_calls.query == {
        "escalation_policy_ids[]": ["EP1"],
        "include[]": ["users"],
        "earliest": ["true"],
    }


def test_on_call_is_cached_for_its_ttl(
    stub: PagerDutyRestStub, directory: PagerDutyRest, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = directory.on_call()
    second = directory.on_call()

    assert second == first and len(stub.requests) == 2  # the second call made no request

    monkeypatch.setattr(pagerduty_rest, "ON_CALL_TTL_SECONDS", 0.0)
    directory.on_call()

    assert len(stub.requests) == 4


def test_a_failed_on_call_lookup_is_not_cached(stub: PagerDutyRestStub, directory: PagerDutyRest) -> None:
    stub.fail_next("/oncalls", 1, status=503)

    with pytest.raises(Transient):
        directory.on_call()
    people = directory.on_call()

    assert [p.user_id for p in people] == ["U1", "U2"]
    assert len(stub.requests) == 4


def test_an_unknown_service_is_rejected(stub: PagerDutyRestStub) -> None:
    with pytest.raises(Rejected, match="404"):
        PagerDutyRest(TOKEN, stub.url, "PNOSUCH", FROM).on_call()


def test_a_429_is_transient_after_one_request_with_its_retry_after(
    stub: PagerDutyRestStub, directory: PagerDutyRest
) -> None:
    stub.respond_next("/incidents", 429, headers={"Retry-After": "30"})

    with pytest.raises(Transient) as caught:
        directory.incident_id("inc-1")

    assert caught.value.retry_after == 30.0
    assert len(stub.requests) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503])
@pytest.mark.parametrize("call", ["incident_id", "add_note", "on_call"])
def test_rate_limits_and_server_errors_are_transient_after_one_request(
    stub: PagerDutyRestStub, directory: PagerDutyRest, status: int, call: str
) -> None:
    stub.add_incident("inc-1", incident_id="Q1ABCDEF")
    stub.fail_next("*", 1, status=status)

    with pytest.raises(Transient) as caught:
        if call == "incident_id":
            directory.incident_id("inc-1")
        elif call == "add_note":
            directory.add_note("Q1ABCDEF", "text")
        else:
            directory.on_call()

    assert caught.value.retry_after is None
    assert len(stub.requests) == 1
    assert stub.notes("Q1ABCDEF") == []


def test_a_wrong_token_is_rejected_after_one_request(stub: PagerDutyRestStub) -> None:
    directory = PagerDutyRest("u+WrongTokenWrongToken", stub.url, SERVICE, FROM)

    with pytest.raises(Rejected, match="401") as caught:
        directory.incident_id("inc-1")

    assert "Authentication failed" in str(caught.value)
    assert len(stub.requests) == 1


def test_a_refused_connection_is_transient(stub: PagerDutyRestStub, directory: PagerDutyRest) -> None:
    stub.stop()

    with pytest.raises(Transient, match="unreachable"):
        directory.incident_id("inc-1")


@pytest.mark.parametrize("close", [False, True], ids=["503", "connection-closed"])
def test_pagerduty_down_is_transient(stub: PagerDutyRestStub, directory: PagerDutyRest, close: bool) -> None:
    stub.set_down(close=close)

    with pytest.raises(Transient):
        directory.on_call()


def test_the_token_is_never_in_an_error_or_a_log(
    stub: PagerDutyRestStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "u+AnotherSecretTokenXYZ"
    messages = []
    for token, script in [(TOKEN, 429), (TOKEN, 500), (TOKEN, 400), (wrong, None)]:
        if script:
            stub.respond_next("*", script)
        with pytest.raises((Transient, Rejected)) as caught:
            PagerDutyRest(token, stub.url, SERVICE, FROM).incident_id("inc-1")
        messages.append(str(caught.value))
    stub.stop()
    with pytest.raises(Transient) as refused:
        PagerDutyRest(TOKEN, stub.url, SERVICE, FROM).on_call()
    messages.append(str(refused.value))

    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    for secret in (TOKEN, wrong, TOKEN[-6:], wrong[-6:]):
        assert not any(secret in m for m in messages + logged), secret


@pytest.mark.parametrize("status", ["acknowledged", "resolved"])
def test_acknowledge_and_resolve_put_the_incident_reference_from_the_configured_user(
    stub: PagerDutyRestStub, directory: PagerDutyRest, status: str
) -> None:
    stub.add_incident("inc-1", incident_id="Q1ABCDEF")

    (directory.acknowledge if status == "acknowledged" else directory.resolve)("Q1ABCDEF")

    [request] = stub.requests
    assert (request.method, request.path) == ("PUT", "/incidents/Q1ABCDEF")
    assert request.header("From") == FROM
    assert request.header("Authorization") == f"Token token={TOKEN}"
    assert request.json == {"incident": {"type": "incident_reference", "status": status}}
    assert stub.status_changes() == [("Q1ABCDEF", status, FROM)]
    assert (stub.incident("Q1ABCDEF") or {})["status"] == status


def test_a_429_on_acknowledge_is_transient_with_pagerdutys_retry_after(
    stub: PagerDutyRestStub, directory: PagerDutyRest
) -> None:
    stub.add_incident("inc-1", incident_id="Q1ABCDEF")
    stub.fail_next("/incidents/Q1ABCDEF", 1, status=429, headers={"Retry-After": "7"})

    with pytest.raises(Transient) as raised:
        directory.acknowledge("Q1ABCDEF")

    assert raised.value.retry_after == 7 and raised.value.held
    assert len(stub.requests) == 1, "no retry inside the client: the queue retries"
    assert stub.status_changes() == []


def test_acknowledging_a_resolved_incident_is_rejected_in_pagerdutys_words(
    stub: PagerDutyRestStub, directory: PagerDutyRest
) -> None:
    stub.add_incident("inc-1", incident_id="Q1ABCDEF", status="resolved")

    with pytest.raises(Rejected) as raised:
        directory.acknowledge("Q1ABCDEF")

    assert "(400)" in str(raised.value) and "Incident Already Resolved" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_a_put_without_a_from_user_is_rejected_as_pagerduty_does(stub: PagerDutyRestStub) -> None:
    stub.add_incident("inc-1", incident_id="Q1ABCDEF")

    with pytest.raises(Rejected, match="From header"):
        PagerDutyRest(TOKEN, stub.url, SERVICE, None).resolve("Q1ABCDEF")
    assert stub.status_changes() == []
