#!/usr/bin/env bash
# Debian's chromium, for the test that opens the rendered book in a headless browser (tests/test_book.py).
# Nothing to do when it is installed; without root or apt it says how and lets the test skip.
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install_chromium: not root or no apt-get: install Debian's chromium to run the browser test" >&2
    exit 0
fi
echo "install_chromium: apt-get install chromium" >&2
apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
chromium --version
