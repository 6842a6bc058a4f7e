"""PagerDuty REST API v2: the few endpoints the responder uses, over seedable data.

GET /incidents?incident_key=K, POST /incidents/{id}/notes and PUT /incidents/{id} (acknowledge or
resolve; both need a From header), GET /services/{id},
GET /oncalls?escalation_policy_ids[]=…&include[]=users. Every request needs
`Authorization: Token token=<token>`. Lists come wrapped with PagerDuty's classic pagination
({"incidents": [...], "limit", "offset", "more", "total"}); errors as {"error": {"message", "code"}}.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

from tests.stubs.base import Recorded, Reply, StubServer

API = "https://api.pagerduty.com"
WEB = "https://stub.pagerduty.com"


def error(status: int, message: str, code: int, *errors: str) -> Reply:
    """PagerDuty's REST error body."""
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = list(errors)
    return Reply(status, {"error": body})


class PagerDutyRestStub(StubServer):
    """Point `PagerDutyRest(token, stub.url, service_id, from_email)` (or PAGERDUTY_API_URL) at `url`.

    HTTPS by default (the `pagerduty` client accepts only https://): trust `ca_file` (SSL_CERT_FILE).
    """

    def __init__(self, *, token: str = "pd-stub-api-token", tls: bool = True) -> None:
        super().__init__(tls=tls)
        self.token = token
        self._incidents: list[dict[str, Any]] = []
        self._services: dict[str, dict[str, Any]] = {}
        self._on_calls: list[dict[str, Any]] = []
        self._notes: dict[str, list[dict[str, Any]]] = {}
        self._status_changes: list[tuple[str, str, str]] = []
        self._ids = itertools.count(1)

    # --- seeding ------------------------------------------------------------------------------

    def add_service(
        self, service_id: str, escalation_policy_id: str = "EP1", name: str = ""
    ) -> dict[str, Any]:
        """A service on an escalation policy."""
        service = {
            "id": service_id,
            "type": "service",
            "summary": name or f"Service {service_id}",
            "name": name or f"Service {service_id}",
            "self": f"{API}/services/{service_id}",
            "html_url": f"{WEB}/service-directory/{service_id}",
            "status": "active",
            "escalation_policy": {
                "id": escalation_policy_id,
                "type": "escalation_policy_reference",
                "summary": f"Policy {escalation_policy_id}",
                "self": f"{API}/escalation_policies/{escalation_policy_id}",
                "html_url": f"{WEB}/escalation_policies/{escalation_policy_id}",
            },
        }
        with self._lock:
            self._services[service_id] = service
        return copy.deepcopy(service)

    def add_incident(
        self,
        incident_key: str,
        *,
        incident_id: str | None = None,
        service_id: str = "PSVC001",
        status: str = "triggered",
        title: str = "",
    ) -> dict[str, Any]:
        """An incident, as the Events API would have opened it for a dedup key (its incident_key)."""
        with self._lock:
            incident_id = incident_id or f"Q{next(self._ids):013d}"
            incident = {
                "id": incident_id,
                "type": "incident",
                "summary": f"[#{len(self._incidents) + 1}] {title or incident_key}",
                "title": title or incident_key,
                "incident_key": incident_key,
                "status": status,
                "urgency": "high",
                "self": f"{API}/incidents/{incident_id}",
                "html_url": f"{WEB}/incidents/{incident_id}",
                "service": {
                    "id": service_id,
                    "type": "service_reference",
                    "summary": f"Service {service_id}",
                },
            }
            self._incidents.append(incident)
            return copy.deepcopy(incident)

    def add_on_call(
        self, escalation_policy_id: str, user_id: str, name: str, email: str, escalation_level: int = 1
    ) -> None:
        """Someone on call now at a level of an escalation policy."""
        with self._lock:
            self._on_calls.append(
                {
                    "escalation_policy_id": escalation_policy_id,
                    "escalation_level": escalation_level,
                    "user": {
                        "id": user_id,
                        "type": "user",
                        "summary": name,
                        "name": name,
                        "email": email,
                        "self": f"{API}/users/{user_id}",
                        "html_url": f"{WEB}/users/{user_id}",
                    },
                }
            )

    def notes(self, incident_id: str) -> list[dict[str, Any]]:
        """Notes added to an incident, oldest first."""
        with self._lock:
            return copy.deepcopy(self._notes.get(incident_id, []))

    def status_changes(self) -> list[tuple[str, str, str]]:
        """Every status a PUT set, oldest first: (incident id, status, the From header)."""
        with self._lock:
            return list(self._status_changes)

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        """An incident as the stub holds it now."""
        with self._lock:
            found = next((i for i in self._incidents if i["id"] == incident_id), None)
            return copy.deepcopy(found)

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._status_changes.clear()
            self._incidents.clear()
            self._services.clear()
            self._on_calls.clear()
            self._notes.clear()

    def default_body(self, status: int) -> Any:
        if status == 429:
            return error(429, "Rate Limit Exceeded", 2020).body
        return error(status, f"scripted {status}", status).body

    # --- the protocol -------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Reply:
        if request.header("Authorization") != f"Token token={self.token}":
            return error(401, "Authentication failed", 2006)
        route = (request.method, request.path)
        if route == ("GET", "/incidents"):
            return self._list_incidents(request)
        if route == ("GET", "/oncalls"):
            return self._list_on_calls(request)
        if request.method == "GET" and (m := re.fullmatch(r"/services/([^/]+)", request.path)):
            service = self._services.get(m[1])
            return Reply(200, {"service": service}) if service else error(404, "Not Found", 2100)
        if request.method == "GET" and (m := re.fullmatch(r"/incidents/([^/]+)", request.path)):
            incident = next((i for i in self._incidents if i["id"] == m[1]), None)
            return Reply(200, {"incident": incident}) if incident else error(404, "Not Found", 2100)
        if request.method == "POST" and (m := re.fullmatch(r"/incidents/([^/]+)/notes", request.path)):
            return self._add_note(m[1], request)
        if request.method == "PUT" and (m := re.fullmatch(r"/incidents/([^/]+)", request.path)):
            return self._set_status(m[1], request)
        return error(404, "Not Found", 2100)

    def _list_incidents(self, request: Recorded) -> Reply:
        keys = request.query.get("incident_key")
        found = [i for i in self._incidents if keys is None or i["incident_key"] in keys]
        return _page(request, "incidents", found)

    def _list_on_calls(self, request: Recorded) -> Reply:
        policies = request.query.get("escalation_policy_ids[]")
        with_users = "users" in request.query.get("include[]", [])
        found = []
        for entry in self._on_calls:
            if policies is not None and entry["escalation_policy_id"] not in policies:
                continue
            user = entry["user"]
            if not with_users:
                user = {k: user[k] for k in ("id", "summary", "self", "html_url")} | {
                    "type": "user_reference"
                }
            policy = entry["escalation_policy_id"]
            found.append(
                {
                    "escalation_policy": {"id": policy, "type": "escalation_policy_reference"},
                    "escalation_level": entry["escalation_level"],
                    "schedule": None,
                    "user": user,
                    "start": None,
                    "end": None,
                }
            )
        return _page(request, "oncalls", found)

    def _add_note(self, incident_id: str, request: Recorded) -> Reply:
        sender = (request.header("From") or "").strip()
        if not sender:
            return error(
                400, "Invalid Input Provided", 2001, "A valid user email is required in the From header."
            )
        if not any(i["id"] == incident_id for i in self._incidents):
            return error(404, "Not Found", 2100)
        body = request.json if isinstance(request.json, dict) else {}
        note = body.get("note")
        content = note.get("content") if isinstance(note, dict) else None
        if not isinstance(content, str) or not content.strip():
            return error(400, "Invalid Input Provided", 2001, "Note content cannot be empty.")
        if len(content) > 25_000:
            return error(400, "Invalid Input Provided", 2001, "Note content is too long.")
        saved = {
            "id": f"N{next(self._ids):013d}",
            "user": {"id": "PUSER01", "type": "user_reference", "summary": sender},
            "channel": {"summary": "The PagerDuty website or APIs"},
            "content": content,
            "created_at": "2026-11-25T10:00:00Z",
        }
        self._notes.setdefault(incident_id, []).append(saved)
        return Reply(201, {"note": copy.deepcopy(saved)})

    def _set_status(self, incident_id: str, request: Recorded) -> Reply:
        sender = (request.header("From") or "").strip()
        if not sender:
            return error(
                400, "Invalid Input Provided", 2001, "A valid user email is required in the From header."
            )
        incident = next((i for i in self._incidents if i["id"] == incident_id), None)
        if incident is None:
            return error(404, "Not Found", 2100)
        body = request.json if isinstance(request.json, dict) else {}
        wanted = body.get("incident")
        status = wanted.get("status") if isinstance(wanted, dict) else None
        if not isinstance(wanted, dict) or wanted.get("type") not in ("incident", "incident_reference"):
            return error(400, "Invalid Input Provided", 2001, "Incident type must be incident_reference.")
        if status not in ("acknowledged", "resolved"):
            return error(400, "Invalid Input Provided", 2001, f"Status {status!r} is not valid.")
        if incident["status"] == "resolved" and status == "acknowledged":
            return error(400, "Invalid Input Provided", 2001, "Incident Already Resolved")
        incident["status"] = status
        self._status_changes.append((incident_id, status, sender))
        return Reply(200, {"incident": copy.deepcopy(incident)})


def _page(request: Recorded, wrapper: str, items: list[dict[str, Any]]) -> Reply:
    limit = int((request.query.get("limit") or ["25"])[0])
    offset = int((request.query.get("offset") or ["0"])[0])
    total_wanted = (request.query.get("total") or ["false"])[0] == "true"
    return Reply(
        200,
        {
            wrapper: copy.deepcopy(items[offset : offset + limit]),
            "limit": limit,
            "offset": offset,
            "more": offset + limit < len(items),
            "total": len(items) if total_wanted else None,
        },
    )
