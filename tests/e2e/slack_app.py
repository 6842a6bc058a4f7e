"""`dr serve --app tests.e2e.slack_app`: the Function App with the tests' FakeOperations as its Operations.

Until slack-ops' Services.operations is wired, the e2e tests give `dr serve` this stand-in; it
journals its calls to DATA_DIR/operations.jsonl, which the tests read.
"""

from __future__ import annotations

from function_app import app
from shared import bootstrap
from tests.fake_operations import FakeOperations

_services = bootstrap.services()  # `dr serve` has set them before it imports this module
_services.__dict__["operations"] = FakeOperations(
    journal=_services.settings.data_dir / "operations.jsonl",
    lookup=lambda incident_id: found.incident if (found := _services.store.get(incident_id)) else None,
)

__all__ = ["app"]
