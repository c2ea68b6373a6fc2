#!/usr/bin/env bash
# Install what the tests need on a fresh Debian/Ubuntu machine, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi
python3 -m pip install -q -r requirements-dev.txt
# The JavaScript client an embedding page uses (tests/test_js_client.py), where Node is installed.
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/js --silent --no-audit --no-fund
fi
python3 -m pytest -q "$@"
