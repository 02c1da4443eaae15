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
  echo "install: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$marker"
fi
