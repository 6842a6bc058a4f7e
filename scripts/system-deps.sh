#!/usr/bin/env bash
# The Debian packages `make setup` needs (and, with the argument `bench`, what `make bench` needs too):
# installed when running as root, named otherwise.
set -euo pipefail
PYTHON=${PYTHON:-python3}

need=()
"$PYTHON" -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
# The Sentinel failover tests run real redis-server and redis-sentinel processes (on free loopback
# ports, in a temporary dir: a system redis on 6379 that the package may start is never used).
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
# The rollback tests run the real `kubectl rollout undo` as their oracle (Debian: 1.20.x; any kubectl will do).
command -v kubectl >/dev/null || need+=(kubernetes-client)
# Servers the tests start run under setpriv --pdeathsig, so a killed test run leaves none behind.
command -v setpriv >/dev/null || need+=(util-linux)
# The table store's tests run Azurite (an npm package, installed into .azurite/ by make setup).
command -v npm >/dev/null || need+=(nodejs npm)
# The HTTP benchmark runs Prometheus Alertmanager beside `dr serve` as its yardstick (issue 8).
if [ "${1:-}" = bench ]; then
  command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null ||
    need+=(prometheus-alertmanager)
fi

((${#need[@]})) || exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
else
  echo "error: missing Debian packages: ${need[*]}" >&2
  echo "       run: sudo apt-get install ${need[*]}   (then make again)" >&2
  exit 1
fi
