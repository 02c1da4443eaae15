#!/usr/bin/env bash
# npm run up: install, build, make sure the servers answer, then bootstrap,
# migrate, seed and run the whole platform in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/build.sh
bash scripts/ensure-services.sh
exec node tools/devstack/dist/up.js
