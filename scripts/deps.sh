#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build retcd (and, with --test, to run its
# tests): protoc and libclang for the build; the real etcd 3.4.23 server and etcdctl as referee.
set -euo pipefail
pkgs=(protobuf-compiler libclang-dev)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(etcd-server etcd-client python3-etcd3 rpm lintian debootstrap systemd-container)
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
