#!/usr/bin/env bash
# onnxruntime-web for the book's "Try it" page, exactly as package-lock.json pins it (`npm ci`), again only when the
# lock file changed; `clothparse book build` copies its files into the site. Without npm: Debian's, when run as root
# with apt-get; otherwise it says how and stops there (the book build then names what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.clothparse-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && exit 0
if ! command -v npm >/dev/null; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "npm_ci: no npm: install Node.js's npm, then run npm ci here (the book's Try it page needs it)" >&2
        exit 0
    fi
    echo "npm_ci: apt-get install npm" >&2
    apt-get install -y -q npm >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q npm >/dev/null; }
fi
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
echo "$want" > "$stamp"
