"""The real kubectl, pointed at an API stub: the oracle the Kubernetes action tests compare with."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.stubs.kube_api import KubeApiStub


def kubectl_or_fail() -> str:
    """kubectl's path; the oracle tests fail (never skip) without it."""
    found = shutil.which("kubectl")
    assert found, (
        "kubectl is not on PATH: the oracle tests need the real kubectl. "
        "Run scripts/system-deps.sh as root (it installs Debian's kubernetes-client) "
        "or apt-get install kubernetes-client."
    )
    return found


def run_kubectl(kubectl: str, stub: KubeApiStub, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `kubectl ARGS --request-timeout=20s` against the stub, with a HOME and kubeconfig of its own."""
    config = home / "kubeconfig"
    config.write_text(stub.kubeconfig())
    # Nothing from the caller's environment: no proxy, no real kubeconfig, no cloud credentials.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": str(config)}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    command = [kubectl, *args, "--request-timeout=20s"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
