#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing:
# chromium, for the browser test of the click demo. Uses apt-get as root,
# sudo apt-get otherwise, and says what to do when neither works.
set -euo pipefail
missing=()
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"   # the path tests/test_demo_browser.py launches
[ -x "$CHROMIUM" ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing system packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt=(apt-get)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  apt=(sudo apt-get)
else
  echo "error: ${missing[*]} missing, and neither root nor passwordless sudo is available." >&2
  echo "       Install it yourself (Debian/Ubuntu: apt-get install -y ${missing[*]}), then rerun make test." >&2
  exit 1
fi
"${apt[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
