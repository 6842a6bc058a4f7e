"""Timers: the sweep that re-sends effects a crash left in an incident's outbox."""

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
