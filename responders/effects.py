"""Service Bus queue triggers: pages, notifications and actions, one session per target."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import services

bp = func.Blueprint()

# Sessions: one message per incident (pages, notifications) or per resource (actions) at a time.
CONNECTION = "ServiceBusConnection"


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="pages", connection=CONNECTION, is_sessions_enabled=True
)
def send_page(msg: func.ServiceBusMessage) -> None:
    """Trigger or resolve the page of an incident."""
    services().pages.handle(msg.get_body())


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="notifications", connection=CONNECTION, is_sessions_enabled=True
)
def send_notification(msg: func.ServiceBusMessage) -> None:
    """Post or update the incident's card."""
    services().cards.handle(msg.get_body())


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="actions", connection=CONNECTION, is_sessions_enabled=True
)
def run_action(msg: func.ServiceBusMessage) -> None:
    """Carry out (for now: record) a first-response action."""
    services().actions.handle(msg.get_body())
