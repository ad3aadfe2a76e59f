#!/usr/bin/env bash
# Installs everything Inception Explorer needs into ./.venv, from the project's own files.
#   bash scripts/install.sh        # the app
#   bash scripts/install.sh test   # the app + the test tools (torchvision, timm, pytest, ray,
#                                  # haproxy, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

# System programs: Graphviz's `dot` lays out graph exports; the browser tests drive Debian's
# Chromium (never a browser downloaded by Playwright).
apt_install() {
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  else echo "warning: please install these Debian packages yourself: $*" >&2; fi
}
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
if [ "${1:-}" = test ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
# deploy/local.sh (and its test) puts HAProxy, the sticky-cookie proxy, in front of the replicas
if [ "${1:-}" = test ] && ! command -v haproxy >/dev/null 2>&1; then missing+=(haproxy); fi
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

python3 -m venv .venv
# setuptools >= 70.1 builds wheels by itself (the `wheel` package no longer needed): Python 3.11's
# venv brings 65.5, with which tests/test_packaging.py's `pip wheel --no-build-isolation` fails.
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=70.1"
if [ "${1:-}" = test ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
echo "installed into .venv"
