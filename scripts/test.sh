#!/usr/bin/env bash
# npm test: install, build, make sure the servers answer, then every unit and
# integration test. Extra arguments go to jest (npm test -- gateway).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/build.sh
bash scripts/ensure-services.sh
# Tests run through swc, which strips types: check them once here.
npx --no-install tsc -p tsconfig.tests.json
NODE_OPTIONS="--experimental-vm-modules --no-warnings=ExperimentalWarning" exec npx --no-install jest "$@"
