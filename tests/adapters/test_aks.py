"""AKS cluster access: the real azure-mgmt-containerservice client against the ARM stub, no kubelogin."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.actions.kind import ActionFailed, Target
from shared.adapters.aks import AKS_SCOPE, AksClusters, cluster_of
from shared.adapters.azure_actions import aks_locator
from shared.adapters.azure_clients import ArmClients
from shared.errors import Transient
from tests.stubs.arm import ArmStub, StubCredential
from tests.stubs.arm_services import kubeconfig
from tests.stubs.base import Reply
from tests.stubs.tls import certificate

SUB = "00000000-0000-0000-0000-00000000000a"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-shop"
CLUSTER = f"{GROUP}/providers/Microsoft.ContainerService/managedClusters/aks-shop"
API = "2026-08-01"  # azure-mgmt-containerservice 41.8.0's
SERVER = "https://aks-shop-dns-1a2b3c4d.hcp.westeurope.azmk8s.io:443"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ca_pem() -> str:
    return Path(certificate().cert_file).read_text()


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch, ca_pem: str) -> Iterator[ArmStub]:
    with ArmStub() as started:
        started.announce(monkeypatch)
        started.put(CLUSTER, {"location": "westeurope", "properties": {"provisioningState": "Succeeded"}})
        config = base64.b64encode(kubeconfig(SERVER, ca_pem).encode()).decode()
        started.on(
            "POST",
            r".*/managedClusters/[^/]+/listClusterUserCredential",
            lambda request, match: Reply(200, {"kubeconfigs": [{"name": "clusterUser", "value": config}]}),
        )
        yield started


def test_access_takes_server_and_ca_from_the_user_kubeconfig_and_a_token_for_aks(
    arm: ArmStub, ca_pem: str
) -> None:
    credential = StubCredential()
    access = aks_locator(arm.url, credential).access(Target(CLUSTER))

    assert (access.server, access.ca_pem) == (SERVER, ca_pem)
    token = access.token()
    assert token.startswith("stub-token-")
    [post] = arm.requests_to(f"{CLUSTER}/listClusterUserCredential", "POST")
    assert post.query == {"api-version": [API]}
    assert (AKS_SCOPE,) in credential.scopes
    assert credential.scopes[-1] == (AKS_SCOPE,)


def test_the_token_is_kept_and_refreshed_when_under_five_minutes_are_left(arm: ArmStub) -> None:
    clock = Clock()
    credential = StubCredential(lifetime=3600, clock=clock)
    access = AksClusters(ArmClients(arm.url, credential), credential, clock=clock).access(Target(CLUSTER))

    first = access.token()
    clock.now += 3600 - 301
    kept = access.token()
    clock.now += 2
    refreshed = access.token()

    assert first == kept != refreshed
    assert credential.scopes.count((AKS_SCOPE,)) == 2


def test_the_cluster_half_is_read_once_per_cluster(arm: ArmStub) -> None:
    locator = aks_locator(arm.url, StubCredential())

    locator.access(Target(CLUSTER))
    locator.access(Target(CLUSTER.upper().replace("SUBSCRIPTIONS", "subscriptions")))

    assert len(arm.requests_to(f"{CLUSTER}/listClusterUserCredential")) == 1


def test_arm_refusing_the_credentials_fails_naming_its_error(arm: ArmStub) -> None:
    arm.fault(
        "POST", f"{CLUSTER}/listClusterUserCredential", 403, "AuthorizationFailed", "No cluster user role."
    )

    with pytest.raises(ActionFailed, match="403 AuthorizationFailed: No cluster user role"):
        aks_locator(arm.url, StubCredential()).access(Target(CLUSTER))


def test_throttled_credentials_are_transient(arm: ArmStub) -> None:
    arm.throttle("POST", f"{CLUSTER}/listClusterUserCredential", retry_after="4")

    with pytest.raises(Transient) as throttled:
        aks_locator(arm.url, StubCredential()).access(Target(CLUSTER))

    assert (throttled.value.held, throttled.value.retry_after) == (True, 4.0)


def test_a_resource_that_is_not_an_aks_cluster_is_refused(arm: ArmStub) -> None:
    with pytest.raises(ActionFailed, match="is not an AKS cluster"):
        aks_locator(arm.url, StubCredential()).access(Target(CLUSTER.replace("managedClusters", "fleets")))


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("- not a mapping", "not a YAML mapping"),
        ("clusters: []\n", "names no cluster with a server"),
        (
            "clusters:\n- name: c\n  cluster:\n    server: https://x\n"
            "    certificate-authority-data: '%%%'\n",
            "not base64",
        ),
    ],
)
def test_a_kubeconfig_without_a_usable_cluster_fails(config: str, problem: str) -> None:
    with pytest.raises(ActionFailed, match=problem):
        cluster_of(config)


def test_the_current_context_picks_the_cluster(ca_pem: str) -> None:
    other = kubeconfig("https://other:443", ca_pem, cluster="other")
    mine = kubeconfig(SERVER, ca_pem)
    merged: Any = mine.replace(
        "clusters:\n", "clusters:\n" + other.split("clusters:\n")[1].split("contexts:")[0], 1
    )

    assert cluster_of(merged).server == SERVER


def test_importing_the_azure_builders_leaves_the_azure_sdks_unimported() -> None:
    """Cold start: only a call that needs a client pays for azure-mgmt-*, azure-identity and PyYAML."""
    import subprocess
    import sys

    code = (
        "import sys, shared.adapters.azure_actions; "
        "print(sorted(m for m in sys.modules if m.startswith(('azure', 'yaml', 'redis'))))"
    )
    root = Path(__file__).resolve().parents[2]
    ran = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)

    assert ran.stdout.strip() == "[]"
