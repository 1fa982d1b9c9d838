#!/usr/bin/env bash
# The dashboard's tests in a real browser: Debian's Chromium (installed with apt-get when it
# is missing and this runs as root), driven by playwright-core from the npm registry at the
# version package-lock.json pins, against target/debug/eddy (which `cargo test` builds).
# EDDY_SCREENSHOTS=docs/screenshots saves the main pages' screenshots there.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser tests: installing Debian's chromium package" >&2
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "browser tests: apt-get could not install chromium" >&2
  fi
fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "browser tests: skipped, there is no chromium on this machine (Debian: apt-get install chromium)" >&2
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
if [ -n "${CARGO_TARGET_DIR:-}" ] && [ -z "${EDDY_BIN:-}" ]; then
  EDDY_BIN="$(cd "$OLDPWD" && cd "$CARGO_TARGET_DIR" && pwd)/debug/eddy"
  export EDDY_BIN
fi
if [ -n "${EDDY_SCREENSHOTS:-}" ]; then
  EDDY_SCREENSHOTS="$(cd "$OLDPWD" && mkdir -p "$EDDY_SCREENSHOTS" && cd "$EDDY_SCREENSHOTS" && pwd)"
  export EDDY_SCREENSHOTS
fi
CHROMIUM="$(command -v chromium)" node --test --test-concurrency=1 dashboard.test.mjs
