#!/bin/sh
# Runs the OS keychain tests against a real Secret Service (gnome-keyring on a private
# session bus). CI must run them: with CI set, missing packages fail the tests instead of
# skipping them. Installs the Debian packages when they are missing and we are root.
set -eu
cd "$(dirname "$0")/.."
need=""
for tool in dbus-run-session dbus-daemon dbus-send gnome-keyring-daemon secret-tool; do
  command -v "$tool" >/dev/null 2>&1 || need="$need $tool"
done
if [ -n "$need" ]; then
  echo "ci-keychain: missing:$need; installing gnome-keyring libsecret-tools dbus" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update && apt-get install -y gnome-keyring libsecret-tools dbus
  else
    sudo apt-get update && sudo apt-get install -y gnome-keyring libsecret-tools dbus
  fi
fi
CI="${CI:-1}" exec npx vitest run test/integration/keychain-*.test.ts test/e2e/jwt-keychain.test.ts
