"""The project's own error types, under one base; adapters translate vendor errors into these.

ResponderError
├── BadInput            the caller must fix the request: a 4xx naming the problem
│   └── Unauthorized    a webhook without valid credentials: 401
├── Transient           a service is busy or unreachable: try again later (after retry_after)
│   └── OutcomeUnknown  the call that changes the target may have reached it; its answer was lost
├── Rejected            a service refused for good (a 400, a bad token): retrying cannot help
├── Contention          a conditional write lost a race
│   ├── Conflict            a conditional create found the entity there already
│   ├── PreconditionFailed  a conditional update found the entity changed (ETag mismatch)
│   ├── LockLost            a queue message's lock expired before it was settled
│   └── StoreContention     lost so many races in a row that the caller should answer 503
├── PoisonMessage       a queue message that can never succeed: dead-letter it with the reason
├── Duplicate           the thing was done before; nothing was repeated
│   └── DuplicateSignal     the signal was accepted before
└── ConfigurationError  the responder cannot start as configured
    ├── SettingsError       a setting is invalid (named, never its value: it may be a secret)
    └── PolicyError         the policy file is invalid (file, place and problem named)
"""


class ResponderError(Exception):
    """Every error the responder raises on purpose."""


class BadInput(ResponderError):
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


class Transient(ResponderError):
    """A downstream service is busy or unreachable: try again later (after retry_after, if it said).

    `held`: the service is up and asked us to slow down (a 429, our own pacing), so the retry does
    not count as a failed try; a 5xx is a failure even when it says when to come back.
    """

    def __init__(self, message: str, retry_after: float | None = None, *, held: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.held = held


# A Transient, so that whatever does not know the difference (a read's retry, a log line) still
# treats it as "later"; the action pipeline catches it first and never sends the start again blind.
class OutcomeUnknown(Transient):
    """The call may have reached the target and its answer was lost: look before calling again."""


class Rejected(ResponderError):
    """A downstream service refused the request for good (a 400, a bad token): retrying cannot help."""


class Contention(ResponderError):
    """A conditional write lost a race with another writer."""


class Conflict(Contention):
    """A conditional create lost: the entity already exists."""


class PreconditionFailed(Contention):
    """A conditional write lost: the entity changed since it was read (ETag mismatch)."""


class LockLost(Contention):
    """A queue message's lock expired and another receiver holds the message or its session now."""


class StoreContention(Contention):
    """A conditional write kept losing; the caller should answer 503 so the sender retries."""


class StoreBusy(StoreContention):
    """The store's file stayed locked by another writer past the busy timeout (503, as contention)."""


class StoreUnavailable(StoreBusy):
    """The store's file cannot take a write now (disk full, I/O error, read-only): 503, and retried."""


class StartRefused(ResponderError):
    """A guardrail checked in the write that starts an action (a pause, an hourly cap) refused it."""


class PoisonMessage(ResponderError):
    """A message that can never succeed; the queue dead-letters it with this reason."""


class Duplicate(ResponderError):
    """The request was carried out before; nothing was repeated."""


class DuplicateSignal(Duplicate):
    """The signal was accepted before; the write was not repeated."""

    def __init__(self, *signal_ids: str) -> None:
        super().__init__(", ".join(signal_ids))
        self.signal_ids = frozenset(signal_ids)


class ConfigurationError(ResponderError):
    """The responder cannot run as configured."""


class SettingsError(ConfigurationError, ValueError):
    """A setting is invalid; the message names it (never its value: it may be a secret)."""


class PolicyError(ConfigurationError):
    """The policy file is invalid; the message names the file, the place and the problem."""


# The answers to a write that do not say it was not taken: a gateway gave up waiting for it (502,
# 504, 408), or the service failed somewhere in it (500). A 503 and a 429 turn the call away.
MAYBE_TAKEN = frozenset({500, 502, 504, 408})


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header given in seconds (the form PagerDuty and Slack send)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 86_400 else None
