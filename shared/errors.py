"""The project's own error types; adapters translate vendor errors into these."""


class BadInput(Exception):
    """A request the caller must fix: answered with a 4xx naming the problem."""

    def __init__(self, error: str, detail: str, status: int = 400) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail
        self.status = status


class Unauthorized(BadInput):
    """A webhook call without valid credentials."""

    def __init__(self, detail: str) -> None:
        super().__init__("unauthorized", detail, status=401)


class Conflict(Exception):
    """A conditional create lost: the entity already exists."""


class PreconditionFailed(Exception):
    """A conditional write lost: the entity changed since it was read (ETag mismatch)."""


class SettingsError(ValueError):
    """A setting is invalid; the message names it (never its value: it may be a secret)."""


class PolicyError(Exception):
    """The policy file is invalid; the message names the file, the place and the problem."""


class Transient(Exception):
    """A downstream service is busy or unreachable: try again later (after retry_after, if it said)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(Exception):
    """A downstream service refused the request for good (a 400, a bad token): retrying cannot help."""


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header given in seconds (the form PagerDuty and Slack send)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 86_400 else None
