#!/usr/bin/env bash
# Generates the Python stubs of the Turbine protocol into OUT_DIR (turbine/v1/turbine_pb2.py
# and turbine_pb2_grpc.py), with Debian's protoc and grpc_python_plugin.
#   generate_stubs.sh OUT_DIR [PROTO_ROOT]
# PROTO_ROOT is the directory holding turbine/v1/turbine.proto: the repository's proto/
# (the default) or an installed Turbine's include/.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUT_DIR [PROTO_ROOT]" >&2
  exit 2
fi
out_dir="$1"
proto_root="${2:-$(cd "$(dirname "$0")/../../proto" && pwd)}"
plugin="$(command -v grpc_python_plugin)" || {
  echo "$0: grpc_python_plugin not found (Debian: apt-get install protobuf-compiler-grpc)" >&2
  exit 1
}
mkdir -p "$out_dir"
protoc --proto_path="$proto_root" \
  --python_out="$out_dir" \
  --plugin=protoc-gen-grpc_python="$plugin" --grpc_python_out="$out_dir" \
  "$proto_root/turbine/v1/turbine.proto"
