"""Slack Web API: chat.postMessage, chat.update, users.info, usergroups.users.list; and response_urls.

slack_sdk's WebClient POSTs JSON (`Content-Type: application/json;charset=utf-8`) with
`Authorization: Bearer <token>`; a form body with a `token` field is accepted too. Slack answers
HTTP 200 with {"ok": true, ...} or {"ok": false, "error": "<code>"}; a rate limit is HTTP 429 with
Retry-After and {"ok": false, "error": "ratelimited"}.

users.info and usergroups.users.list: slack_sdk POSTs their arguments form-encoded (a GET with
query parameters is taken too); user_not_found / no_such_subteam for unknown ids. A response_url
(`response_url()`) is a capability URL under /actions/…: it takes a JSON POST and answers 200
"ok", at most five times (then 404 "used_url"), as Slack documents.

Channels as Slack treats them: chat.postMessage takes an ID ("C0123ABC") or a name ("#incidents",
"incidents") and answers with the channel's ID; chat.update takes only the ID (a name gets
channel_not_found, see slackapi/python-slack-sdk#696).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.stubs.base import Recorded, Reply, StubServer

CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")


@dataclass
class SlackMessage:
    """A message as Slack keeps it; `versions` holds every (text, blocks) it had, oldest first."""

    channel: str  # the channel's ID
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None  # set on a thread reply: the parent's ts
    versions: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    @property
    def updates(self) -> int:
        """How many times chat.update changed it."""
        return len(self.versions) - 1


class SlackStub(StubServer):
    """Point `SlackChat(token, stub.url)` (or SLACK_API_URL) at `url` (it ends in /api/).

    `channels` maps names to IDs ({"incidents": "C0INCIDENTS"}); an unknown name is created on first
    use, an ID-shaped channel is taken as it is, and one in `missing_channels` (name or ID) answers
    channel_not_found. `update_accepts_names=True` lets chat.update take a name (Slack does not).
    """

    content_type = "application/json; charset=utf-8"

    def __init__(
        self,
        *,
        token: str = "xoxb-stub-bot-token",
        channels: Mapping[str, str] | None = None,
        missing_channels: Iterable[str] = (),
        update_accepts_names: bool = False,
        tls: bool = False,
    ) -> None:
        super().__init__(tls=tls)
        self.token = token
        self.update_accepts_names = update_accepts_names
        self._channels = {name.lstrip("#"): cid for name, cid in (channels or {}).items()}
        self._missing = {c.lstrip("#") for c in missing_channels}
        self._messages: list[SlackMessage] = []
        self._epoch = int(time.time())
        self._counter = itertools.count(1)
        self._users: dict[str, dict[str, Any]] = {}
        self._groups: dict[str, list[str]] = {}
        self._responses: dict[str, list[Any]] = {}

    @property
    def url(self) -> str:
        return self.base_url + "/api/"

    # --- seeding ------------------------------------------------------------------------------

    def add_user(self, user_id: str, email: str | None, name: str = "") -> None:
        """A workspace member users.info knows (email None: a profile without one, like a bot)."""
        profile: dict[str, Any] = {"real_name": name or user_id, "display_name": name or user_id}
        if email is not None:
            profile["email"] = email
        with self._lock:
            self._users[user_id] = {"id": user_id, "name": name or user_id.lower(), "profile": profile}

    def add_group(self, group_id: str, members: Iterable[str]) -> None:
        """A user group (subteam) and its members."""
        with self._lock:
            self._groups[group_id] = list(members)

    def response_url(self, name: str = "") -> str:
        """A fresh response_url (as Slack puts in a command or interaction)."""
        key = name or f"{next(self._counter):06d}"
        with self._lock:
            self._responses.setdefault(key, [])
        return f"{self.base_url}/actions/T111/{key}/secret-{hashlib.sha1(key.encode()).hexdigest()[:12]}"

    def responses(self, name: str | None = None) -> list[Any]:
        """The JSON bodies posted to response_urls (to one, by name), oldest first."""
        with self._lock:
            if name is not None:
                return copy.deepcopy(self._responses.get(name, []))
            return [copy.deepcopy(b) for bodies in self._responses.values() for b in bodies]

    # --- the model, for assertions ------------------------------------------------------------

    def channel_id(self, channel: str) -> str:
        """The ID a name maps to (creating it as chat.postMessage would); an ID maps to itself."""
        with self._lock:
            return self._resolve(channel, names=True) or ""

    def messages(self, channel: str | None = None) -> list[SlackMessage]:
        """Every message (cards and thread replies), oldest first; of one channel (name or ID) if given."""
        with self._lock:
            if channel is None:
                return [copy.deepcopy(m) for m in self._messages]
            cid = self._channels.get(channel.lstrip("#"), channel)
            return [copy.deepcopy(m) for m in self._messages if m.channel == cid]

    def cards(self, channel: str | None = None) -> list[SlackMessage]:
        """Top-level messages (not thread replies), oldest first."""
        return [m for m in self.messages(channel) if m.thread_ts is None]

    def replies(self, ts: str, channel: str | None = None) -> list[SlackMessage]:
        """The thread replies to a message, oldest first."""
        return [m for m in self.messages(channel) if m.thread_ts == ts]

    def message(self, channel: str, ts: str) -> SlackMessage | None:
        """One message by channel (name or ID) and ts."""
        found = [m for m in self.messages(channel) if m.ts == ts]
        return found[0] if found else None

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._messages.clear()
            self._responses.clear()

    def default_body(self, status: int) -> Any:
        if status == 429:
            return {"ok": False, "error": "ratelimited"}
        if status >= 500:
            return "<html><body><h1>Server Error</h1></body></html>"
        return {"ok": False, "error": f"scripted_{status}"}

    def _pattern(self, path: str) -> str:
        # "chat.postMessage" is short for "/api/chat.postMessage".
        return path if path.startswith("/") or path == "*" else "/api/" + path

    # --- the protocol -------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Reply:
        if request.path.startswith("/actions/"):
            return self._respond(request)
        method = request.path.removeprefix("/api/")
        reads = ("users.info", "usergroups.users.list")
        if (request.method, method) not in {("POST", "chat.postMessage"), ("POST", "chat.update")} | {
            (verb, m) for m in reads for verb in ("GET", "POST")
        }:
            return Reply(404, {"ok": False, "error": "unknown_method"})
        args = {k: v[-1] for k, v in request.query.items()} | _arguments(request)
        token = _bearer(request) or args.get("token")
        if not token:
            return _error("not_authed")
        if token != self.token:
            return _error("invalid_auth")
        if method == "users.info":
            user = self._users.get(str(args.get("user") or ""))
            return Reply(200, {"ok": True, "user": copy.deepcopy(user)}) if user else _error("user_not_found")
        if method == "usergroups.users.list":
            group = self._groups.get(str(args.get("usergroup") or ""))
            return (
                Reply(200, {"ok": True, "users": list(group)})
                if group is not None
                else _error("no_such_subteam")
            )
        if method == "chat.postMessage":
            return self._post(args)
        return self._update(args)

    def _respond(self, request: Recorded) -> Reply:
        """A response_url: JSON in, "ok" out; five uses, then used_url."""
        parts = request.path.split("/")
        key = parts[3] if len(parts) > 4 else ""
        if request.method != "POST" or key not in self._responses:
            return Reply(404, "invalid_token")
        if len(self._responses[key]) >= 5:
            return Reply(404, "used_url")
        if not isinstance(request.json, dict):
            return Reply(400, "invalid_payload")
        self._responses[key].append(request.json)
        return Reply(200, "ok")

    def _post(self, args: dict[str, Any]) -> Reply:
        channel = self._resolve(str(args.get("channel") or ""), names=True)
        if channel is None:
            return _error("channel_not_found")
        text, blocks = args.get("text") or "", _blocks(args.get("blocks"))
        if blocks is None:
            return _error("invalid_blocks_format")
        if not text and not blocks:
            return _error("no_text")
        ts = f"{self._epoch}.{next(self._counter):06d}"
        thread_ts = args.get("thread_ts") or None
        self._messages.append(SlackMessage(channel, ts, text, blocks, thread_ts, [(text, blocks)]))
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "B0STUBBOT",
            "text": text,
            "blocks": blocks,
            "ts": ts,
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
        return Reply(200, {"ok": True, "channel": channel, "ts": ts, "message": message})

    def _update(self, args: dict[str, Any]) -> Reply:
        channel = self._resolve(str(args.get("channel") or ""), names=self.update_accepts_names)
        if channel is None:
            return _error("channel_not_found")
        ts = str(args.get("ts") or "")
        found = next((m for m in self._messages if m.channel == channel and m.ts == ts), None)
        if found is None:
            return _error("message_not_found")
        text, blocks = args.get("text") or "", _blocks(args.get("blocks"))
        if blocks is None:
            return _error("invalid_blocks_format")
        if not text and not blocks:
            return _error("no_text")
        found.text, found.blocks = text, blocks
        found.versions.append((text, blocks))
        message = {"type": "message", "text": text, "blocks": blocks, "bot_id": "B0STUBBOT"}
        return Reply(200, {"ok": True, "channel": channel, "ts": ts, "text": text, "message": message})

    def _resolve(self, channel: str, names: bool) -> str | None:
        """The channel's ID, or None where Slack would answer channel_not_found."""
        name = channel.lstrip("#")
        if not name or name in self._missing:
            return None
        if not channel.startswith("#") and CHANNEL_ID.fullmatch(channel):
            return channel
        if not names:
            return None
        if name not in self._channels:
            self._channels[name] = "C" + hashlib.sha1(name.encode()).hexdigest()[:10].upper()
        cid = self._channels[name]
        return None if cid in self._missing else cid


def _error(code: str) -> Reply:
    return Reply(200, {"ok": False, "error": code})


def _bearer(request: Recorded) -> str | None:
    value = request.header("Authorization") or ""
    if not value.startswith("Bearer "):
        return None
    return value.removeprefix("Bearer ").strip() or None


def _arguments(request: Recorded) -> dict[str, Any]:
    if isinstance(request.json, dict):
        return dict(request.json)
    if request.form is not None:
        return {k: v[-1] for k, v in request.form.items()}
    return {}


def _blocks(value: Any) -> list[dict[str, Any]] | None:
    """Blocks as a list (a form body sends them as a JSON string); None if malformed."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
        return None
    return value
