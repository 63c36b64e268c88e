#!/bin/bash
# Boots a minimal Debian with systemd in systemd-nspawn, installs retcd's .deb and drives
# etcd.service with systemctl: active only once READY, put/get through etcdctl, STATUS line,
# clean stop, restart keeping the data, purge keeping the data. Needs root, debootstrap and
# systemd-container; the Debian root is built once and cached in $RETCD_DEBIAN_ROOT.
# Usage: boot-test.sh PATH/TO/retcd.deb ETCDCTL CLIENT_PORT PEER_PORT
set -euo pipefail
deb=$1 etcdctl=$2 cport=$3 pport=$4
cache=${RETCD_DEBIAN_ROOT:-/var/cache/retcd-debian-root}
if [ ! -x "$cache/usr/bin/systemctl" ]; then
    rm -rf "$cache.tmp"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser bookworm \
        "$cache.tmp" http://deb.debian.org/debian >/dev/null
    mv "$cache.tmp" "$cache"
fi
work=$(mktemp -d /var/tmp/retcd-boot.XXXXXX)
nspawn=""
cleanup() {
    if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
        kill -TERM "$nspawn" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$nspawn" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
cp -a "$cache" "$work/root"
cp "$deb" "$work/root/root/retcd.deb"
systemd-nspawn --boot --console=pipe --register=no --keep-unit -D "$work/root" \
    --machine "retcd-$$" >"$work/console.log" 2>&1 &
nspawn=$!
leader=""
for _ in $(seq 100); do
    leader=$(pgrep -P "$nspawn" | head -1 || true)
    if [ -n "$leader" ] && nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'; then
        break
    fi
    sleep 0.3
done
inside() { nsenter -t "$leader" -a "$@"; }
step() { echo "== $*"; }
diagnose() {
    echo "FAILED at line $1" >&2
    inside systemctl status etcd --no-pager -l >&2 || true
    inside journalctl -u etcd --no-pager -n 40 >&2 || true
}
trap 'diagnose $LINENO' ERR

step install
inside dpkg -i /root/retcd.deb >/dev/null
inside test -d /var/lib/etcd
[ "$(inside stat -c '%a %U' /var/lib/etcd)" = "700 etcd" ]
[ "$(inside systemctl is-enabled etcd 2>/dev/null || true)" = disabled ]

step configure and start
cat > "$work/root/etc/etcd/etcd.conf" <<CONF
ETCD_NAME="boot1"
ETCD_LISTEN_CLIENT_URLS="http://127.0.0.1:$cport"
ETCD_ADVERTISE_CLIENT_URLS="http://127.0.0.1:$cport"
ETCD_LISTEN_PEER_URLS="http://127.0.0.1:$pport"
ETCD_INITIAL_ADVERTISE_PEER_URLS="http://127.0.0.1:$pport"
ETCD_INITIAL_CLUSTER="boot1=http://127.0.0.1:$pport"
CONF
inside systemctl start etcd
# Type=notify: start returns once READY=1 was sent, so the member serves now.
[ "$(inside systemctl is-active etcd)" = active ]
ep="--endpoints=127.0.0.1:$cport"
[ "$(ETCDCTL_API=3 "$etcdctl" "$ep" put booted yes)" = OK ]
[ "$(ETCDCTL_API=3 "$etcdctl" "$ep" get booted --print-value-only)" = yes ]
inside systemctl status etcd --no-pager | grep -q 'Status: "serving clients; this member is the leader; revision '

step stop and start again
inside systemctl stop etcd
[ "$(inside systemctl is-active etcd || true)" = inactive ]
inside systemctl start etcd
[ "$(ETCDCTL_API=3 "$etcdctl" "$ep" get booted --print-value-only)" = yes ]

step purge
inside systemctl stop etcd
inside dpkg --purge retcd >/dev/null
! inside test -e /usr/bin/etcd
! inside test -e /etc/etcd/etcd.conf
inside test -d /var/lib/etcd
echo "boot test passed"
