#!/usr/bin/env bash
# buf breaking against the main branch; skipped only when main has no protos yet.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --verify --quiet main >/dev/null || ! git cat-file -e main:buf.yaml 2>/dev/null; then
  echo "buf breaking: main has no buf.yaml yet; nothing to compare against"
  exit 0
fi
npx --no-install buf breaking --against '.git#branch=main'
