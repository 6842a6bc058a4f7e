"""The Slack edge's pure parts: the signature, the form and payload, the grammar, the Block Kit replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from shared.chatops.blocks import MAX_BLOCKS, MAX_SECTION, Reply, escape
from shared.chatops.confirmation import confirmation_reply, pressed_reply
from shared.chatops.grammar import BY_VERB, Command, NotACommand, parse
from shared.chatops.inbound import form_fields, parse_command, parse_interaction, reply_origins
from shared.chatops.operations import ActionRequest, Preview
from shared.chatops.signature import verify_request
from shared.chatops.views import help_reply, status_reply
from shared.domain.incidents import Incident
from shared.errors import BadInput, Unauthorized
from shared.ports import IncidentHeadline, OpenOverview, OutboxBacklog
from shared.status.model import build_status
from shared.status.read import SHOWN_LIMIT, SHOWN_PER_GROUP
from shared.triage.policy import load_policy
from tests.factories import incident
from tests.kube_access import AKS_ID
from tests.slack_requests import SECRET, command_body, interaction_body, signed_headers

FORM = "application/x-www-form-urlencoded"


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# --- the signature ------------------------------------------------------------------------------


def vector(refdata: Path) -> tuple[dict[str, str], bytes, dict[str, str]]:
    """The refdata signing vector: itself, its body, and the headers Slack sent with it."""
    found = json.loads((refdata / "slack" / "signature_test_vector.json").read_text())
    body = (refdata / "slack" / found["body_file"]).read_bytes()
    names = ("X-Slack-Request-Timestamp", "X-Slack-Signature")
    return found, body, {name: found[name] for name in names}


def test_the_refdata_vector_verifies_at_its_timestamp(refdata: Path) -> None:
    vector_, body, headers = vector(refdata)
    moment = at(int(vector_["X-Slack-Request-Timestamp"]))
    verify_request(body, headers, vector_["signing_secret"], lambda: moment)
    # and our own signer makes the same signature
    assert (
        signed_headers(body, int(vector_["X-Slack-Request-Timestamp"]), vector_["signing_secret"])[
            "X-Slack-Signature"
        ]
        == vector_["X-Slack-Signature"]
    )


def test_a_stale_timestamp_is_refused_even_with_the_right_signature(refdata: Path) -> None:
    vector_, body, headers = vector(refdata)
    late = at(int(vector_["X-Slack-Request-Timestamp"]) + 301)
    with pytest.raises(Unauthorized, match="5 minutes"):
        verify_request(body, headers, vector_["signing_secret"], lambda: late)
    early = at(int(vector_["X-Slack-Request-Timestamp"]) - 301)
    with pytest.raises(Unauthorized, match="5 minutes"):
        verify_request(body, headers, vector_["signing_secret"], lambda: early)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"X-Slack-Signature": "v0=" + "0" * 64}, "does not match"),
        ({"X-Slack-Signature": None}, "missing"),
        ({"X-Slack-Request-Timestamp": None}, "missing"),
        ({"X-Slack-Request-Timestamp": "12.5"}, "Unix time"),
        ({"X-Slack-Request-Timestamp": "١٢٣"}, "Unix time"),
        ({"X-Slack-Signature": "v1=abc"}, "v0="),
        ({"X-Slack-Signature": "v0=é"}, "v0="),
    ],
)
def test_a_wrong_or_malformed_signature_is_refused(change: dict[str, str | None], detail: str) -> None:
    body = b"token=x&text=status"
    headers: dict[str, str | None] = {**signed_headers(body, 1_700_000_000), **change}
    sent = {k: v for k, v in headers.items() if v is not None}
    with pytest.raises(Unauthorized, match=detail) as refused:
        verify_request(body, sent, SECRET, lambda: at(1_700_000_000))
    assert SECRET not in str(refused.value)


def test_the_signature_covers_the_body_and_needs_a_secret() -> None:
    headers = signed_headers(b"text=status", 1_700_000_000)
    with pytest.raises(Unauthorized, match="does not match"):
        verify_request(b"text=failover", headers, SECRET, lambda: at(1_700_000_000))
    with pytest.raises(Unauthorized, match="SLACK_SIGNING_SECRET"):
        verify_request(b"text=status", headers, None, lambda: at(1_700_000_000))


# --- what Slack posts ---------------------------------------------------------------------------


def test_the_refdata_slash_command_parses(refdata: Path) -> None:
    body = (refdata / "slack" / "slash_command_body_signing_example.txt").read_bytes()
    command = parse_command(form_fields(body, FORM))
    assert (command.command, command.user_id, command.channel_id, command.text) == (
        "/webhook-collect",
        "U2CERLKJA",
        "G8PSS9T3V",
        "",
    )
    assert "hooks.slack.com" not in repr(command)  # the response_url is a capability: never in a log


def test_the_refdata_block_actions_payload_parses_for_our_buttons_only() -> None:
    body = interaction_body("dr_ack", "inc-1", "https://hooks.slack.com/actions/T111/111/random-value")
    press = parse_interaction(form_fields(body, FORM))
    assert (press.action_id, press.value, press.user_id, press.channel_id, press.message_ts) == (
        "dr_ack",
        "inc-1",
        "W111",
        "C111",
        "111.222",
    )
    with pytest.raises(BadInput, match="is not one of"):
        parse_interaction(
            form_fields(interaction_body("a", "click_me_123", "https://hooks.slack.com/x"), FORM)
        )


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"{}", "application/json", "unsupported_media_type"),
        (b"\xff\xfe", FORM, "invalid_form"),
        (b"a", FORM, "invalid_form"),
        (urlencode({"x": "1"}).encode(), FORM, "missing_field"),
        (urlencode({"payload": "{not json"}).encode(), FORM, "invalid_json"),
        (urlencode({"payload": "[1]"}).encode(), FORM, "invalid_field"),
        (urlencode({"payload": '{"type":"view_submission"}'}).encode(), FORM, "unsupported_interaction"),
        (urlencode({"payload": '{"type":"block_actions","actions":[]}'}).encode(), FORM, "invalid_field"),
    ],
)
def test_a_malformed_interaction_is_a_named_bad_input(body: bytes, content_type: str, error: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_interaction(form_fields(body, content_type))
    assert refused.value.error == error
    assert 400 <= refused.value.status < 500


def test_a_command_without_its_fields_is_a_named_bad_input() -> None:
    fields = form_fields(command_body("status", "https://hooks.slack.com/commands/1"), FORM)
    del fields["trigger_id"]
    with pytest.raises(BadInput, match="trigger_id"):
        parse_command(fields)
    fields = form_fields(command_body("status", "ftp://nowhere"), FORM)
    with pytest.raises(BadInput, match="response_url must be a Slack URL") as refused:
        parse_command(fields)
    assert "ftp://" not in refused.value.detail


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/commands/1",  # not https
        "http://169.254.169.254/latest/meta-data",  # the instance metadata endpoint
        "https://hooks.slack.com.evil.example/commands/1",
        "https://evil.example/?hooks.slack.com",
    ],
)
def test_a_response_url_off_slacks_reply_origins_is_refused(url: str) -> None:
    fields = form_fields(command_body("status", url), FORM)
    with pytest.raises(BadInput, match="must be a Slack URL"):
        parse_command(fields)


def test_the_web_apis_own_origin_is_a_reply_origin_too() -> None:
    origins = reply_origins("http://127.0.0.1:8123/api/")
    fields = form_fields(command_body("status", "http://127.0.0.1:8123/actions/T1/1/x"), FORM)
    assert parse_command(fields, origins).response_url.startswith("http://127.0.0.1:8123/")
    with pytest.raises(BadInput):
        parse_command(form_fields(command_body("status", "http://127.0.0.1:9999/x"), FORM), origins)


# --- the grammar --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("status", Command("status")),
        ("  STATUS  ", Command("status")),
        ("incidents", Command("incidents")),
        ("incidents ikea", Command("incidents", tenant="ikea")),
        ("incidents sev1", Command("incidents", severity="sev1")),
        ("incidents ikea Sev2", Command("incidents", tenant="ikea", severity="sev2")),
        ("show inc-20261125-abc", Command("show", subject="inc-20261125-abc")),
        ("ack inc-1", Command("ack", subject="inc-1")),
        ("resolve inc-1", Command("resolve", subject="inc-1")),
        ("failover redis cache-a", Command("failover", subject="cache-a", system="redis")),
        (
            "failover cosmos /subscriptions/s/resourceGroups/rg/providers/Microsoft.DocumentDB/"
            "databaseAccounts/a",
            Command(
                "failover",
                subject="/subscriptions/s/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/a",
                system="cosmos",
            ),
        ),
        ("rollback shop/web", Command("rollback", subject="shop/web")),
        ("rollback aks-1:shop/web --to 3", Command("rollback", subject="aks-1:shop/web", revision=3)),
        ("restart shop/web", Command("restart", subject="shop/web")),
        ("restore shop", Command("restore", subject="shop")),
        ("restore shop --backup nightly-1", Command("restore", subject="shop", backup="nightly-1")),
        # A cluster by its ARM id, as Operations resolves it (found by the e2e test: it was refused).
        (f"restart {AKS_ID}:shop/web", Command("restart", subject=f"{AKS_ID}:shop/web")),
        ("restore aks-1:shop", Command("restore", subject="aks-1:shop")),
        (f"restore {AKS_ID}:shop --backup b", Command("restore", subject=f"{AKS_ID}:shop", backup="b")),
        ("approve act-1", Command("approve", subject="act-1")),
        ("deny act-1", Command("deny", subject="act-1")),
        ("pause", Command("pause")),
        ("pause ikea storm in westeurope", Command("pause", tenant="ikea", reason="storm in westeurope")),
        ("pause * maintenance", Command("pause", reason="maintenance")),
        ("resume", Command("resume")),
        ("resume ikea", Command("resume", tenant="ikea")),
        ("help failover", Command("help", subject="failover")),
    ],
)
def test_the_grammar_reads_every_command(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "nearest"),
    [
        ("statsu", "status"),
        ("incidnets", "incidents"),
        ("restrat shop/web", "restart"),
        ("failvoer redis a", "failover"),
        ("failover mysql a", "failover"),
        ("failover redis", "failover"),
        ("rollback shop", "rollback"),
        ("rollback shop/web --to x", "rollback"),
        ("rollback shop/web --backup b", "rollback"),
        ("restart shop/web --to 2", "restart"),
        ("restore Shop!", "restore"),
        ("show", "show"),
        ("show a b", "show"),
        ("ack `rm -rf`", "ack"),
        ("incidents sev9", "incidents"),
        ("status now", "status"),
        ("resume a b", "resume"),
    ],
)
def test_anything_malformed_gets_the_nearest_commands_help(text: str, nearest: str) -> None:
    parsed = parse(text)
    assert isinstance(parsed, NotACommand)
    assert parsed.nearest == BY_VERB[nearest]
    reply = help_reply(parsed.nearest, parsed.problem).to_dict()
    assert escape(BY_VERB[nearest].syntax) in json.dumps(reply, ensure_ascii=False)
    assert reply["response_type"] == "ephemeral"


def test_gibberish_gets_every_commands_help() -> None:
    parsed = parse("xyzzy plugh")
    assert isinstance(parsed, NotACommand) and parsed.nearest is None
    text = json.dumps(help_reply(None, parsed.problem).to_dict(), ensure_ascii=False)
    assert all(escape(u.syntax) in text for u in BY_VERB.values())


# --- replies ------------------------------------------------------------------------------------


def overview(incidents: list[Incident]) -> OpenOverview:
    """What the store's open_overview gives read_status for these incidents."""
    return OpenOverview.of([IncidentHeadline.of(i) for i in incidents], SHOWN_PER_GROUP, SHOWN_LIMIT)


def test_the_status_screen_fits_slacks_limits_with_a_storm_of_incidents() -> None:
    policy = load_policy(None)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    opened = [
        incident(
            f"inc-{n}",
            component=f"comp{n % 20}",
            tenant=f"tenant{n % 3}",
            title="Cosmos DB account unavailable in West Europe " * 3,
            opened_at=(now - timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
        )
        for n in range(1000)
    ]
    status = build_status(
        now=now,
        policy=policy,
        open_incidents=overview(opened),
        queues=[],
        dead_letters=[],
        outbox=OutboxBacklog(0, None),
    )
    body = status_reply(status, tuple(policy.components)).to_dict()
    assert len(body["blocks"]) <= MAX_BLOCKS
    for block in body["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION
    text = json.dumps(body, ensure_ascii=False)
    assert "more open incidents not shown" in text and "… and" in text
    assert body["response_type"] == "in_channel"  # the status concerns the channel


def test_the_status_screen_groups_by_component_and_tenant_and_names_quiet_components() -> None:
    policy = load_policy(None)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    one = incident("inc-a", opened_at="2026-11-25T11:50:00.000Z")
    status = build_status(
        now=now,
        policy=policy,
        open_incidents=overview([one]),
        queues=[],
        dead_letters=[],
        outbox=OutboxBacklog(0, None),
    )
    text = json.dumps(status_reply(status, tuple(policy.components)).to_dict(), ensure_ascii=False)
    assert f"{one.component} · {one.tenant}" in text and "inc-a" in text and "open 10m" in text
    assert "No open incidents" in text and "automation on" in text


def test_a_confirmation_has_confirm_and_cancel_and_no_confirm_when_refused() -> None:
    request = ActionRequest("failover", "cache-a", "redis")
    ok = confirmation_reply(Preview(request, "Fail cache-a over", ("redis.failover on cache-a",))).to_dict()
    ids = [e["action_id"] for b in ok["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["dr_confirm", "dr_cancel"]
    values = {e["value"] for b in ok["blocks"] if b["type"] == "actions" for e in b["elements"]}
    assert values == {request.to_value()}
    refused = confirmation_reply(
        Preview(request, "Fail cache-a over", (), refused="cooldown until 11:00")
    ).to_dict()
    ids = [e["action_id"] for b in refused["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["dr_cancel"] and "cooldown until 11:00" in json.dumps(refused)


def test_a_pressed_card_keeps_its_blocks_and_loses_the_pressed_button() -> None:
    card = (
        {"type": "section", "text": {"type": "mrkdwn", "text": "*SEV1* Cosmos down"}},
        {
            "type": "actions",
            "block_id": "card",
            "elements": [
                {"type": "button", "action_id": "dr_ack"},
                {"type": "button", "action_id": "dr_resolve"},
            ],
        },
    )
    after = pressed_reply(card, "dr_ack", "card", "Acknowledged by <@W1>", whole_block=False).to_dict()
    assert after["replace_original"] is True
    assert after["blocks"][0] == card[0]
    assert [e["action_id"] for e in after["blocks"][1]["elements"]] == ["dr_resolve"]
    assert "Acknowledged by <@W1>" in json.dumps(after["blocks"][-1])
    gone = pressed_reply(card, "dr_resolve", "card", "Resolved", whole_block=True).to_dict()
    assert [b["type"] for b in gone["blocks"]] == ["section", "context"]


def test_a_reply_over_fifty_blocks_is_cut_with_a_note() -> None:
    reply = Reply("many", tuple({"type": "divider"} for _ in range(80)))
    blocks = reply.to_dict()["blocks"]
    assert len(blocks) == MAX_BLOCKS and "more blocks" in json.dumps(blocks[-1])
