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


class PolicyError(Exception):
    """The policy file is invalid; the message names the file, the place and the problem."""
