"""Service Bus queue triggers: pages, notifications and actions, one session per target."""

from __future__ import annotations

import logging
from collections.abc import Callable

import azure.functions as func

from shared.bootstrap import services

bp = func.Blueprint()
log = logging.getLogger(__name__)

# Sessions: one message per incident (pages, notifications) or per resource (actions) at a time.
CONNECTION = "ServiceBusConnection"


def _deliver(queue: str, msg: func.ServiceBusMessage, handle: Callable[[bytes], None]) -> None:
    """Run the handler; a raise makes the host redeliver (and dead-letter at MaxDeliveryCount), so the
    log names the delivery that failed, by the ids Service Bus gave it."""
    try:
        handle(msg.get_body())
    except Exception as e:
        log.warning(
            "%s: message %s (session %s) failed on delivery %s: %s: %s",
            queue,
            msg.message_id,
            msg.session_id,
            msg.delivery_count,
            type(e).__name__,
            e,
        )
        raise


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="pages", connection=CONNECTION, is_sessions_enabled=True
)
def send_page(msg: func.ServiceBusMessage) -> None:
    """Trigger or resolve the page of an incident."""
    _deliver("pages", msg, services().pages.handle)


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="notifications", connection=CONNECTION, is_sessions_enabled=True
)
def send_notification(msg: func.ServiceBusMessage) -> None:
    """Post or update the incident's card."""
    _deliver("notifications", msg, services().cards.handle)


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="actions", connection=CONNECTION, is_sessions_enabled=True
)
def run_action(msg: func.ServiceBusMessage) -> None:
    """Carry out (for now: record) a first-response action."""
    _deliver("actions", msg, services().actions.handle)
