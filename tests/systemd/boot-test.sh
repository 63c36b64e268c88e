#!/bin/bash
# Boots a minimal Debian with systemd in systemd-nspawn, installs retcd's .deb and drives
# etcd.service with systemctl: active only once READY, put/get through etcdctl, STATUS line,
# clean stop, restart keeping the data, purge keeping the data. Needs root, debootstrap and
# systemd-container; the Debian root is built once and cached in $RETCD_DEBIAN_ROOT.
# Usage: boot-test.sh PATH/TO/retcd.deb ETCDCTL CLIENT_PORT PEER_PORT
set -euo pipefail
deb=$1 etcdctl=$2 cport=$3 pport=$4
. "$(dirname "$0")/lib.sh"
ensure_root_image
boot boot1 "$deb"
leader=$LEADER
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
env_file boot1 "$cport" "$pport" "boot1=http://127.0.0.1:$pport" >"$work/boot1/etc/etcd/etcd.conf"
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
