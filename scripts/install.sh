#!/usr/bin/env bash
# Installs everything Inception Explorer needs into ./.venv, from the project's own files.
#   bash scripts/install.sh        # the app
#   bash scripts/install.sh test   # the app + the test tools (torchvision, timm, pytest, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

# System programs: Graphviz's `dot` lays out graph exports (and is checked by the tests).
if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz
  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo apt-get install -y -qq graphviz
  else echo "warning: install Graphviz (the 'dot' program) for SVG/PNG export" >&2; fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = test ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
echo "installed into .venv"
