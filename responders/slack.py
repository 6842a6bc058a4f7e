"""Slack: POST /api/slack/commands (/dr) and POST /api/slack/interactions (buttons), and the `chatops` queue.

Anonymous at the host: Slack cannot send a function key, so the signature is the authentication,
checked before anything is read or stored.
"""

from __future__ import annotations

import logging

import azure.functions as func

from responders.http import answers_errors, error_response, json_response
from shared.bootstrap import services
from shared.domain.effects import CHATOPS_QUEUE
from shared.settings import MAX_BODY_BYTES

bp = func.Blueprint()
log = logging.getLogger(__name__)
MAX_SLACK_BODY = 64 * 1024  # a slash command is a few hundred bytes, a button payload a few KiB


def _verified_form(req: func.HttpRequest) -> dict[str, str]:
    """The form fields of a request Slack signed; BadInput (401, 413, 415, 400) otherwise."""
    from shared.chatops.inbound import form_fields
    from shared.chatops.signature import verify_request
    from shared.errors import BadInput

    app = services()
    body = req.get_body()
    if len(body) > min(MAX_SLACK_BODY, MAX_BODY_BYTES):
        raise BadInput("body_too_large", f"limit {MAX_SLACK_BODY} bytes", 413)
    verify_request(body, dict(req.headers), app.settings.slack_signing_secret, app.clock)
    return form_fields(body, req.headers.get("content-type"))


@bp.route(route="slack/commands", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_errors
def slack_commands(req: func.HttpRequest) -> func.HttpResponse:
    """Answer /dr within 3 s: read-only commands at once, the rest queued and acknowledged."""
    from shared.chatops.inbound import parse_command, reply_origins
    from shared.chatops.plain import one_line

    command = parse_command(_verified_form(req), reply_origins(services().settings.slack_api_url))
    try:
        reply = services().desk.command(command)
    except Exception:
        log.exception("slack command from %s not taken", one_line(command.user_id))
        return json_response(
            {
                "response_type": "ephemeral",
                "text": "The responder could not take this on right now; try again shortly.",
            }
        )
    return json_response(reply.to_dict())


@bp.route(route="slack/interactions", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@answers_errors
def slack_interactions(req: func.HttpRequest) -> func.HttpResponse:
    """Queue a button press and answer 200 at once (the pressed message is updated from the queue)."""
    from shared.chatops.inbound import parse_interaction, reply_origins
    from shared.chatops.plain import one_line

    press = parse_interaction(_verified_form(req), reply_origins(services().settings.slack_api_url))
    try:
        services().desk.press(press)
    except Exception:
        log.exception("slack button %s from %s not queued", press.action_id, one_line(press.user_id))
        return error_response(503, "unavailable", "the press could not be queued; press again shortly")
    return func.HttpResponse(status_code=200)


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name=CHATOPS_QUEUE, connection="ServiceBusConnection", is_sessions_enabled=True
)
def work_chatops(msg: func.ServiceBusMessage) -> None:
    """Finish a queued command or button press, or post a reply again."""
    services().desk.handle(msg.get_body())
