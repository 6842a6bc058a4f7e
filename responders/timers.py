"""Timers: the sweeps that send again what a crash or a failed send lost: the effects left in an
incident's outbox, and the messages that make actions go on."""

from __future__ import annotations

import logging
from datetime import timedelta

import azure.functions as func

from shared.bootstrap import services
from shared.clock import iso
from shared.ports import SelfRepairing

bp = func.Blueprint()
log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(seconds=30)


@bp.timer_trigger(arg_name="timer", schedule="*/30 * * * * *", run_on_startup=False)
def sweep_outbox(timer: func.TimerRequest) -> None:
    """Send effects that were stored but never confirmed on the queue."""
    app = services()
    stuck = app.store.with_pending_effects(iso(app.clock() - STUCK_AFTER), limit=500)
    for versioned in stuck:
        app.intake.flush(versioned)
    if stuck:
        log.warning("swept %d incidents with unsent effects", len(stuck))
    if isinstance(app.store, SelfRepairing):  # Table Storage: index rows a crash left half-written
        settled = app.store.repair()
        if settled:
            log.warning("repaired what interrupted writes left on %d incidents", settled)


# Halfway between the outbox sweeps: the two never take the store at the same second.
@bp.timer_trigger(arg_name="timer", schedule="15,45 * * * * *", run_on_startup=False)
def sweep_actions(timer: func.TimerRequest) -> None:
    """Send again each action's wake (run, check, expire, or its pending page) written on its
    record but not come within a margin of when it was due: its sender died or its send failed."""
    resent = services().actions.sweep()
    if resent:
        log.warning("sent %d lost action wakes again", resent)
