#!/usr/bin/env bash
# Installs dependencies when they are missing or older than the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "install: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

marker=node_modules/.aifactory-installed
if [ ! -f "$marker" ] || [ package-lock.json -nt "$marker" ]; then
  # npm install, not npm ci: the registry this machine kind reaches records only
  # Linux's optional native packages (swc, turbo) in the lockfile, which npm ci
  # then refuses as out of sync. npm install still follows the lockfile.
  echo "install: npm install"
  npm install --no-audit --no-fund --loglevel=error
  touch "$marker"
fi
