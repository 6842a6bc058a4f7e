"""Local HTTP stubs that speak ARM's, PagerDuty's and Slack's documented wire protocols, for adapter tests.

    with PagerDutyEventsStub() as pd:            # https://127.0.0.1:<port>; trust pd.ca_file
        ...PagerDutyEvents(routing, pd.url)...
        assert pd.incident_count() == 1

Each stub records every request (`requests`, `requests_to(path)`), can be scripted per path
(`respond_next`, `fail_next`, `drop_next`) and switched `down`, and keeps a model of what the
service would now show (alerts, notes, messages).
"""

from tests.stubs.arm import ArmStub, StubCredential, arm_error
from tests.stubs.base import Recorded, Reply, StubServer
from tests.stubs.pagerduty_events import Alert, PagerDutyEventsStub
from tests.stubs.pagerduty_rest import PagerDutyRestStub
from tests.stubs.slack import SlackMessage, SlackStub

__all__ = [
    "Alert",
    "ArmStub",
    "PagerDutyEventsStub",
    "PagerDutyRestStub",
    "Recorded",
    "Reply",
    "SlackMessage",
    "SlackStub",
    "StubCredential",
    "StubServer",
    "arm_error",
]
