#!/bin/bash
# Boots a minimal Debian with systemd in systemd-nspawn, installs retcd's .deb and drives
# etcd.service with systemctl: active only once READY, put/get through etcdctl, STATUS line,
# clean stop, restart keeping the data, backups by etcd-backup.service, purge keeping the data. Needs root, debootstrap and
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
    inside journalctl -u etcd-backup --no-pager -n 20 >&2 || true
}
trap 'diagnose $LINENO' ERR

step "install over what Debian's etcd-server left behind"
inside install -d -m 0700 /var/lib/etcd/default/member/snap /var/lib/etcd/default/member/wal
echo "etcd-server's data" >"$work/boot1/var/lib/etcd/default/member/snap/db"
note=$(inside dpkg -i /root/retcd.deb 2>&1 >/dev/null)
echo "$note" | grep -q "^retcd: /var/lib/etcd/default holds the data of Debian's etcd-server, which retcd does not run on;$"
[ "$(cat "$work/boot1/var/lib/etcd/default/member/snap/db")" = "etcd-server's data" ]
inside test -f /usr/share/doc/retcd/migrating-from-etcd.md
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

step backup through etcd-backup.service and its timer
[ "$(inside stat -c '%a %U %G' /etc/etcd/backup.conf)" = "640 root etcd" ]
[ "$(inside systemctl is-enabled etcd-backup.timer 2>/dev/null || true)" = disabled ]
inside install -d -o etcd -g etcd -m 0700 /var/backups/etcd
printf 'ETCD_BACKUP_STORE=file:///var/backups/etcd\nETCD_BACKUP_ENDPOINTS=127.0.0.1:%s\nETCD_BACKUP_KEEP_LAST=2\n' \
    "$cport" >>"$work/boot1/etc/etcd/backup.conf"
for i in 1 2 3; do
    # Type=oneshot: start returns when the run is over.
    inside systemctl start etcd-backup
    [ "$(inside systemctl show -p Result --value etcd-backup)" = success ]
done
# Three runs, and retention (keep the last 2) applied after each.
[ "$(inside etcd-backup list | wc -l)" = 2 ]
inside etcd-backup verify --latest | grep -q ': OK (revision '
[ "$(inside stat -c '%U' "$(inside sh -c 'ls /var/backups/etcd/etcd-snapshot-*.db.zst | head -1')")" = etcd ]
inside systemctl enable --now etcd-backup.timer 2>/dev/null
[ "$(inside systemctl is-active etcd-backup.timer)" = active ]
inside systemctl disable --now etcd-backup.timer 2>/dev/null

step purge
inside systemctl stop etcd
inside dpkg --purge retcd >/dev/null
! inside test -e /usr/bin/etcd
! inside test -e /etc/etcd/etcd.conf
! inside test -e /etc/etcd/backup.conf
inside test -d /var/lib/etcd
echo "boot test passed"
