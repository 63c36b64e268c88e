#!/usr/bin/env bash
# Builds retcd and runs one member with etcd's defaults: name "default", data in
# ./default.etcd, clients on 127.0.0.1:2379, peers on 127.0.0.1:2380. Extra arguments are
# passed to etcd (e.g. --name m1), and ETCD_* variables are honoured as etcd honours them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$( [ -w /var/cache ] && echo /var/cache/retcd-target || echo "$here/target")}
# RETCD_PROFILE=dev reuses the debug build of the test command (slower member, no extra build).
profile=${RETCD_PROFILE:-release}
cargo build --profile "$profile" --manifest-path "$here/Cargo.toml" -p retcd --bin etcd
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
exec "$CARGO_TARGET_DIR/$dir/etcd" "$@"
