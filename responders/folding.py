"""Service Bus trigger: fold admitted signals into their incidents, one correlation key at a time."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.bootstrap import services
from shared.errors import PoisonMessage
from shared.intake.admission import INTAKE_QUEUE, signal_of
from shared.ports import QueueMessage

bp = func.Blueprint()
log = logging.getLogger(__name__)

CONNECTION = "ServiceBusConnection"


# Sessions are correlation keys, so one instance at a time folds a key: its incident is written by
# one writer, once per batch (host.json's serviceBus.maxMessageBatchSize bounds the batch).
@bp.service_bus_queue_trigger(
    arg_name="messages",
    queue_name=INTAKE_QUEUE,
    connection=CONNECTION,
    is_sessions_enabled=True,
    cardinality=func.Cardinality.MANY,
)
def fold_signals(messages: list[func.ServiceBusMessage]) -> None:
    """Fold a session's batch of signals; raising redelivers the batch, whose signals are idempotent."""
    app = services()
    signals = []
    for message in messages:
        try:
            signals.append(signal_of(message.get_body()))
        except PoisonMessage as e:
            # Ours were validated before they were queued: this is a bug or a stranger's message.
            # Kept where /dr status shows dead letters, so the batch need not fail for it.
            log.error("intake message %s refused: %s", message.message_id, e)
            app.queue.dead_letter_message(_as_sent(message), "PoisonMessage", str(e)[:1000])
    app.intake.accept(signals)


def _as_sent(message: func.ServiceBusMessage) -> QueueMessage:
    return QueueMessage(
        queue=INTAKE_QUEUE,
        body=message.get_body(),
        message_id=message.message_id or "unknown",
        session_id=message.session_id,
        application_properties=dict(message.application_properties or {}),
    )
