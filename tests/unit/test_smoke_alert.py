"""The smoke alert under the default policy: paged and carded, never acted on; its Resolved resolves it."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from shared.domain.effects import EffectKind
from shared.domain.resources import Ownership, ResourceId, ownership
from shared.domain.severity import Severity
from shared.intake.azure_monitor import parse_alert
from shared.smoke.alert import SmokeAlert
from shared.smoke.client import api_base
from shared.triage.assessment import assess
from shared.triage.correlation import correlate
from shared.triage.policy import load_policy

POLICY = load_policy()
FIRED, RESOLVED = "2026-01-02T03:04:05.678Z", "2026-01-02T03:05:06.789Z"


def owner(resource: ResourceId, tags: Mapping[str, str]) -> Ownership:
    return ownership(resource, tags, POLICY.naming, dict(POLICY.component_by_type))


def test_the_fired_alert_pages_and_cards_with_no_rule_and_no_first_response() -> None:
    alert = SmokeAlert.new()
    signal = parse_alert(alert.payload(FIRED), owner)
    decided = assess(signal, POLICY)
    assert (signal.rule, signal.state, signal.component, signal.tenant) == (alert.rule, "fired", "", "")
    assert decided.severity == Severity.SEV2 and decided.severity in POLICY.paging
    assert decided.rules == () and decided.actions == (), "no rule may plan a failover for a smoke test"
    opened = correlate(None, signal, decided, FIRED, POLICY)
    assert opened is not None
    assert {e.kind for e in opened.effects} == {EffectKind.PAGE, EffectKind.NOTIFY}

    resolved = parse_alert(alert.payload(FIRED, RESOLVED), owner)
    outcome = correlate(opened.incident, resolved, assess(resolved, POLICY), RESOLVED, POLICY)
    assert outcome is not None and outcome.incident.status == "resolved"


def test_each_run_has_its_own_rule_and_instance_and_a_tenant_when_asked() -> None:
    first, second = SmokeAlert.new(), SmokeAlert.new("ikea")
    assert first.rule != second.rule and first.alert_id != second.alert_id
    assert parse_alert(second.payload(FIRED), owner).tenant == "ikea"


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("https://dr-app.azurewebsites.net", "https://dr-app.azurewebsites.net/api"),
        ("https://dr-app.azurewebsites.net/api/", "https://dr-app.azurewebsites.net/api"),
        ("http://127.0.0.1:7071/", "http://127.0.0.1:7071/api"),
    ],
)
def test_the_api_base_is_taken_with_or_without_api(given: str, base: str) -> None:
    assert api_base(given) == base


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        api_base("dr-app.azurewebsites.net")
