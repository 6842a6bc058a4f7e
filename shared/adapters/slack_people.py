"""Who a Slack user is and which user groups they are in: users.info and usergroups.users.list.

users.info needs the users:read and users:read.email scopes (the e-mail matches PagerDuty's on-call
person); usergroups.users.list needs usergroups:read.
"""

from __future__ import annotations

from shared.adapters.slack_chat import TIMEOUT_SECONDS, _translated
from shared.errors import Rejected


class SlackPeople:
    """Implements `shared.chatops.authorisation.People` on Slack's Web API."""

    def __init__(self, token: str, base_url: str) -> None:
        from slack_sdk import WebClient

        self._client = WebClient(token=token, base_url=base_url, timeout=TIMEOUT_SECONDS, retry_handlers=[])

    def email(self, user_id: str) -> str | None:
        """The user's e-mail address, if Slack shows it (a bot or a guest may have none)."""
        try:
            with _translated("users.info"):
                answer = self._client.users_info(user=user_id)
        except Rejected as e:
            if "user_not_found" in str(e):  # not in this workspace: no address to match
                return None
            raise
        user = answer.get("user") or {}
        email = (user.get("profile") or {}).get("email") if isinstance(user, dict) else None
        return str(email).strip().lower() if email else None

    def group_members(self, group_id: str) -> frozenset[str]:
        """The user ids in a user group."""
        try:
            with _translated("usergroups.users.list"):
                answer = self._client.usergroups_users_list(usergroup=group_id)
        except Rejected as e:
            if "no_such_subteam" in str(e):  # a group deleted since it was configured: nobody is in it
                return frozenset()
            raise
        users = answer.get("users") or []
        return frozenset(str(u) for u in users if isinstance(u, str))
