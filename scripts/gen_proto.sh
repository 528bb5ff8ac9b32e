#!/usr/bin/env bash
# Generates the Python code for every proto under proto/carenet into proto/gen/python.
# Usage: scripts/gen_proto.sh [OUT_DIR]   (default proto/gen/python)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-proto/gen/python}"
py="${PYTHON:-.venv/bin/python}"
bin="$(dirname "$py")"
rm -rf "$out/carenet"
mkdir -p "$out"
mapfile -t protos < <(find proto/carenet -name '*.proto' | sort)
PATH="$bin:$PATH" "$py" -m grpc_tools.protoc -Iproto -Iproto/vendor \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  "${protos[@]}"
# Regular packages (not namespace packages) keep imports and type checking simple.
find "$out/carenet" -type d -exec sh -c 'touch "$1/__init__.py"' _ {} \;
touch "$out/carenet/py.typed"
