#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for tests/test_report_browser.py (the report is checked in a real
# browser: images load, nothing wider than a 1,280 px viewport, every section present). No Selenium, no driver:
# the test drives `chromium --headless --dump-dom/--screenshot` directly. Safe to run again.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(chromium --version 2>/dev/null || echo unknown version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-dejavu-core: the SVG plots name DejaVu Sans (matplotlib's font), so text keeps its measured width.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium installed: $(chromium --version 2>/dev/null || echo unknown version)"
