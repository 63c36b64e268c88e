#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build retcd (and, with --test, to run its
# tests): protoc, protobuf's well-known .proto files (the etcd-client crate the tests use imports
# google/protobuf/descriptor.proto; apt leaves them out as a recommendation of protoc) and
# libclang for the build; the real etcd 3.4.23 server and etcdctl as referee.
set -euo pipefail
pkgs=(protobuf-compiler libprotobuf-dev libclang-dev)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(etcd-server etcd-client python3-etcd3 python3-etcd3gw patroni rpm lintian debootstrap systemd-container openssl)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's etcd-server package may start a service on 2379; tests use their own ports, but a
# leftover package service must not hold the default ports a developer runs on.
command -v cargo >/dev/null || { echo "cargo is required (rustup)" >&2; exit 1; }

# The S3-compatible server etcd-backup's tests upload to: moto (pinned; 5.2.1 answered
# CompleteMultipartUpload with a body the AWS SDK cannot parse), with boto3, in a venv that
# the tests find at the same place (tests/src/s3.rs).
if [ "${1:-}" = "--test" ]; then
  moto_spec='moto[server]==5.2.5'
  venv=${RETCD_MOTO_VENV:-/var/cache/retcd-moto}
  if ! mkdir -p "$venv" 2>/dev/null || [ ! -w "$venv" ]; then
    venv="$HOME/.cache/retcd-moto"
  fi
  if [ "$(cat "$venv/.retcd-spec" 2>/dev/null)" != "$moto_spec" ]; then
    echo "installing $moto_spec into $venv" >&2
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
      SUDO=""
      [ "$(id -u)" -eq 0 ] || SUDO=sudo
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q "$moto_spec"
    echo "$moto_spec" > "$venv/.retcd-spec"
  fi
fi
