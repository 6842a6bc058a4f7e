"""The `dr` command: `dr serve` runs the responder locally, `dr explain FILE` shows a decision,
`dr status`, `dr dead-letters`, `dr replay` are the operator's view of a data dir, and `dr actions`,
`dr approve|deny ID`, `dr pause|resume` steer the automation; `dr smoke` checks a deployed one."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import BadInput, PolicyError, ResponderError, SettingsError, StoreContention
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.bootstrap import Services
    from shared.localhost.local_settings import LocalSettings


class CommandFailed(ResponderError):
    """A command could not do what was asked; the message says why (exit 1)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dr` console script."""
    args = _parser().parse_args(argv)
    if args.command == "smoke":  # a remote responder: no local settings or data dir are involved
        return _smoke(args)
    try:
        # As the Functions host does: local.settings.json in the working directory, under the environment.
        from shared.localhost.local_settings import apply_local_settings

        local = apply_local_settings(Path.cwd(), os.environ)
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"dr: invalid settings: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "serve":
            _serve(args, settings, local)
        elif args.command == "explain":
            _explain(args)
        elif args.command == "status":
            _status(args, settings)
        elif args.command == "dead-letters":
            _dead_letters(args, settings)
        elif args.command == "replay":
            _replay(args, settings)
        elif args.command == "actions":
            _actions(args, settings)
        elif args.command in ("approve", "deny"):
            _decide(args, settings)
        else:
            _pause(args, settings)
        return 0
    except PolicyError as e:
        print(f"dr: invalid policy: {e}", file=sys.stderr)
        return 2
    except SettingsError as e:
        print(f"dr: invalid settings: {e}", file=sys.stderr)
        return 2
    except BadInput as e:
        print(f"dr: {args.file if args.command == 'explain' else ''}: {e.error}: {e.detail}", file=sys.stderr)
        return 1
    except CommandFailed as e:
        print(f"dr {args.command}: {e}", file=sys.stderr)
        return 1
    except ResponderError as e:  # a store or service refused or failed: say so, not a traceback
        print(f"dr {args.command}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"dr: {e}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    from shared.status.model import ALL_QUEUES

    parser = argparse.ArgumentParser(prog="dr", description="DR Responder: the incident responder, locally.")
    commands = parser.add_subparsers(dest="command", required=True)
    data_dir_help = "the responder's data dir (default: DR_DATA_DIR, else .data)"

    serve = commands.add_parser("serve", help="serve the registered functions on http://HOST:PORT/api")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)
    serve.add_argument("--data-dir", type=Path, help=data_dir_help)
    serve.add_argument(
        "--app", default="function_app", help="module that defines `app` (default: function_app)"
    )
    serve.add_argument("--function-key", help="default: DR_FUNCTION_KEY, else DATA_DIR/function-key")

    explain = commands.add_parser(
        "explain", help="show how a payload is normalized and classified; stores nothing"
    )
    explain.add_argument("file", help="an Azure Monitor alert or Event Grid delivery (JSON); - for stdin")
    explain.add_argument("--json", action="store_true", help="the full structure, as JSON")
    explain.add_argument(
        "--endpoint",
        choices=("alerts", "eventgrid"),
        help="the endpoint you mean to send it to: say so if it belongs to the other",
    )

    status = commands.add_parser("status", help="open incidents, queues, dead letters, outboxes, automation")
    status.add_argument("--data-dir", type=Path, help=data_dir_help)
    status.add_argument("--json", action="store_true", help="as JSON, for scripts (GET /api/status's shape)")

    dead = commands.add_parser("dead-letters", help="messages that gave up, newest first, with their reasons")
    dead.add_argument("--data-dir", type=Path, help=data_dir_help)
    dead.add_argument("--queue", choices=ALL_QUEUES, help="one queue only")
    dead.add_argument("--limit", type=_limit, default=20, help="at most this many (default 20, up to 1000)")
    dead.add_argument("--json", action="store_true", help="as JSON, for scripts")

    replay = commands.add_parser(
        "replay", help="send a dead-lettered message again, under a new message id, once"
    )
    replay.add_argument("message_id", help="as `dr dead-letters` shows it")
    replay.add_argument("--data-dir", type=Path, help=data_dir_help)
    replay.add_argument("--queue", choices=ALL_QUEUES, help="when the id is dead-lettered in several queues")

    actions = commands.add_parser("actions", help="first-response actions, newest first, with their state")
    actions.add_argument("--data-dir", type=Path, help=data_dir_help)
    actions.add_argument("--status", help="one state only (awaiting approval, running, failed, …)")
    actions.add_argument("--incident", help="one incident's actions only")
    actions.add_argument(
        "--limit", type=_limit, default=20, help="at most this many (default 20, up to 1000)"
    )
    actions.add_argument("--json", action="store_true", help="as JSON, for scripts")
    by_help = "who decides (default: your login name); recorded with `via cli`"
    for verb, what in (
        ("approve", "run an action awaiting approval"),
        ("deny", "refuse an action awaiting approval"),
    ):
        decide = commands.add_parser(verb, help=what)
        decide.add_argument("action_id", help="as `dr actions` shows it (act-…)")
        decide.add_argument("--by", help=by_help)
        decide.add_argument("--data-dir", type=Path, help=data_dir_help)
    for verb, what in (
        ("pause", "stop automatic actions (all tenants, or one)"),
        ("resume", "let them run again"),
    ):
        switch = commands.add_parser(verb, help=what)
        switch.add_argument("--tenant", default="", help="one tenant only (default: all)")
        switch.add_argument("--reason", default="", help="why, for whoever finds it paused")
        switch.add_argument("--by", help=by_help)
        switch.add_argument("--data-dir", type=Path, help=data_dir_help)
    smoke = commands.add_parser(
        "smoke", help="post-deploy check: a test alert is paged, carded and resolved (exit 0 if all passed)"
    )
    smoke.add_argument(
        "--url", required=True, help="the Function App (or dr serve), e.g. https://APP.azurewebsites.net"
    )
    smoke.add_argument("--key", help="its function key (default: DR_FUNCTION_KEY); never printed")
    smoke.add_argument(
        "--timeout", type=_seconds, default=120.0, help="seconds each wait may take (default 120)"
    )
    smoke.add_argument("--tenant", default="", help="the tenant the test alert is tagged with (for routing)")
    smoke.add_argument("--json", action="store_true", help="the report as JSON, for scripts")
    return parser


def _limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be from 1 to 1000")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600 seconds")
    return value


def _on_data_dir(settings: Settings, given: Path | None) -> Settings:
    """The settings, on the data dir given on the command line if one was."""
    return replace(settings, data_dir=given) if given else settings


def _serve(args: argparse.Namespace, settings: Settings, local: LocalSettings) -> None:
    from shared.localhost.local_settings import banner_lines
    from shared.localhost.server import serve

    settings = _on_data_dir(settings, args.data_dir)
    if args.function_key:
        settings = replace(settings, function_key=args.function_key)
    seen = dict(os.environ, DR_DATA_DIR=str(settings.data_dir))
    options = {"DR_DATA_DIR": "--data-dir"} if args.data_dir else {}
    if args.function_key:
        seen["DR_FUNCTION_KEY"], options["DR_FUNCTION_KEY"] = args.function_key, "--function-key"
    serve(args.host, args.port, settings, args.app, banner_lines(local, seen, options))


def _explain(args: argparse.Namespace) -> None:
    from shared.explain import explain
    from shared.explain_render import render_explanation

    body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    explained = explain(body, args.endpoint)
    if args.json:
        print(json.dumps(explained, indent=2))
    else:
        print(render_explanation(explained), end="")


def _services(settings: Settings, given: Path | None) -> Services:
    """The services on an existing data dir (a status must not create an empty one)."""
    from shared.localhost.served import ServedServices

    settings = _on_data_dir(settings, given)
    if not settings.data_dir.is_dir():
        raise CommandFailed(f"no data dir at {settings.data_dir} (start dr serve, or pass --data-dir)")
    return ServedServices(settings)  # the status counts dr serve's inbox too


def _status(args: argparse.Namespace, settings: Settings) -> None:
    from shared.status.read import read_status
    from shared.status.render import render_status

    app = _services(settings, args.data_dir)
    status = read_status(
        app.status_queries, app.queue_inspector, app.policy, app.clock(), app.automation_view()
    )
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
    else:
        print(render_status(status), end="")


def _dead_letters(args: argparse.Namespace, settings: Settings) -> None:
    from shared.status.read import read_dead_letters
    from shared.status.render import render_dead_letters

    app = _services(settings, args.data_dir)
    found = read_dead_letters(app.queue_inspector, args.queue, args.limit)
    if args.json:
        print(json.dumps({"dead_letters": [d.to_dict() for d in found], "count": len(found)}, indent=2))
    else:
        print(render_dead_letters(found), end="")


def _replay(args: argparse.Namespace, settings: Settings) -> None:
    from shared.status.replay import ReplayRefused, replay_dead_letter

    app = _services(settings, args.data_dir)
    try:
        done = replay_dead_letter(app.queue_inspector, app.store, args.message_id, app.clock(), args.queue)
    except ReplayRefused as e:
        raise CommandFailed(str(e)) from None
    what = f" ({done.summary})" if done.summary else ""
    print(f"replayed {done.queue} message {done.message_id}{what} as {done.new_message_id}")
    if done.incident_id:
        print(f"  written on the timeline of {done.incident_id}")


def _actions(args: argparse.Namespace, settings: Settings) -> None:
    from shared.actions.control import ACTION_STATES

    if args.status and args.status not in ACTION_STATES:
        raise CommandFailed(f"--status must be one of {', '.join(ACTION_STATES)}")
    app = _services(settings, args.data_dir)
    records = app.action_store.list_actions(args.status, args.incident, args.limit)
    if args.json:
        print(json.dumps({"actions": [r.to_dict() for r in records], "count": len(records)}, indent=2))
        return
    if not records:
        print("no actions")
    for r in records:
        print(f"{r.id}  {r.state:<17} {r.mode:<8} {r.action} on {r.target}")
        print(f"    incident {r.incident_id}, planned {r.planned_at} by {r.planned_by}")
        if r.state == "awaiting approval":
            print(f"    {r.request}")
        if r.result:
            print(f"    {r.result}")


def _decide(args: argparse.Namespace, settings: Settings) -> None:
    from shared.actions.control import decide, person

    app = _services(settings, args.data_dir)
    try:
        record = decide(app.actions, args.action_id, args.command == "approve", person(_who(args), "cli"))
    except BadInput as e:
        raise CommandFailed(e.detail) from None
    except StoreContention as e:
        raise CommandFailed(f"{e}; try again") from None
    print(f"{record.id}: {record.state} by {record.approved_by or person(_who(args), 'cli')}")
    if record.state == "approved":
        print("  it runs as soon as `dr serve` (or the Function App) takes its message")


def _pause(args: argparse.Namespace, settings: Settings) -> None:
    from shared.actions.control import person, set_paused

    app = _services(settings, args.data_dir)
    actor = person(_who(args), "cli")
    print(set_paused(app.action_store, args.command == "pause", args.tenant, actor, args.reason, app.clock))


def _smoke(args: argparse.Namespace) -> int:
    from shared.smoke.alert import SmokeAlert
    from shared.smoke.client import REQUEST_SECONDS, ApiClient, api_base
    from shared.smoke.render import render_smoke
    from shared.smoke.run import Smoke

    key = args.key or os.environ.get("DR_FUNCTION_KEY", "")
    if not key:
        print("dr smoke: no function key: pass --key or set DR_FUNCTION_KEY", file=sys.stderr)
        return 2
    try:
        base = api_base(args.url)
    except ValueError as e:
        print(f"dr smoke: {e}", file=sys.stderr)
        return 2
    client = ApiClient(base, key, min(REQUEST_SECONDS, args.timeout))  # one request never outlasts a wait
    report = Smoke(client, args.timeout).run(SmokeAlert.new(args.tenant))
    print(
        json.dumps(report.to_dict(), indent=2) if args.json else render_smoke(report),
        end="\n" if args.json else "",
    )
    return 0 if report.passed else 1


def _who(args: argparse.Namespace) -> str:
    import getpass

    return str(args.by or getpass.getuser())


if __name__ == "__main__":
    sys.exit(main())
