#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's `prometheus` package (bookworm: 2.42) when
# /usr/bin/prometheus or /usr/bin/promtool is missing. The tests run both binaries themselves
# (temporary directory, free port); the package's own service is not needed: in a container
# without systemd its postinst starts nothing, and on a systemd host the daemon it starts
# listens on :9090, which the tests never use.
set -euo pipefail
if [[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]]; then
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to apt-get install prometheus" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
install() { $SUDO apt-get install -y --no-install-recommends prometheus; }
install || { $SUDO apt-get update && install; }
/usr/bin/promtool --version | head -1
