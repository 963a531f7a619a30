#!/bin/sh
# Installs the system packages the test suite talks to, when they are missing.
# Debian names; run as root (CI and the dev machines are root). As a normal user we only
# say what is missing, and the tests that need it skip with that message.
#   mosquitto: the broker tests start their own on free ports
#   chromium:  the dashboard's browser tests (tests/e2e/test_browser.py) drive it headless
set -eu
missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$missing chromium"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "missing system packages:$missing -- install them with: sudo apt-get install$missing" >&2
    fi
fi
