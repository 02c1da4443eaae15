#!/usr/bin/env bash
# Builds every workspace in dependency order (Prisma clients are generated offline as part of it).
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1 DO_NOT_TRACK=1
npx --no-install turbo run build --output-logs=errors-only --log-order=grouped "$@"
