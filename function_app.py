"""The Function App: wiring only. Each responder module is one trigger family."""

import azure.functions as func

from responders import actions, alerts, effects, events, folding, incidents, pagerduty, slack, status, timers

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (
    alerts.bp,
    events.bp,
    folding.bp,
    incidents.bp,
    status.bp,
    actions.bp,
    effects.bp,
    pagerduty.bp,
    slack.bp,
    timers.bp,
):
    app.register_functions(blueprint)
