#!/usr/bin/env bash
# Install what phonebank needs on a fresh Debian machine: Java 17 + Maven (local Kafka),
# redis-server, promtool (metric and rule checks), chromium + chromedriver (the browser
# test), and the project with its dev extra.
# Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# the volunteer page's browser test (tests/browser/): headless Chromium and its driver
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import phonebank, pytest, ruff, mypy, hypothesis, markdown_it, nh3, selenium" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .stack/.installed ] || [ constraints.txt -nt .stack/.installed ]; then
  echo "bootstrap: pip install -e '.[dev]' -c constraints.txt"
  "$PYTHON" -m pip install -q --disable-pip-version-check -e '.[dev]' -c constraints.txt
  mkdir -p .stack && touch .stack/.installed
fi
