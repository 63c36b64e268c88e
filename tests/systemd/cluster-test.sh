#!/bin/bash
# Three containers, each with retcd's .deb and its own env file, form one cluster under
# systemd: started without waiting (a member's start completes only once a quorum runs), all
# three become active, member list shows three started members, a write on one is read on
# another. Usage: cluster-test.sh DEB ETCDCTL C1 P1 C2 P2 C3 P3 (ports on 127.0.0.1).
set -euo pipefail
deb=$1 etcdctl=$2
cports=("$3" "$5" "$7") pports=("$4" "$6" "$8")
. "$(dirname "$0")/lib.sh"
ensure_root_image
ic="m1=http://127.0.0.1:${pports[0]},m2=http://127.0.0.1:${pports[1]},m3=http://127.0.0.1:${pports[2]}"
leaders=()
for i in 0 1 2; do
    boot "m$((i + 1))" "$deb"
    l=$LEADER
    leaders+=("$l")
    nsenter -t "$l" -a dpkg -i /root/retcd.deb >/dev/null
    env_file "m$((i + 1))" "${cports[$i]}" "${pports[$i]}" "$ic" >"$work/m$((i + 1))/etc/etcd/etcd.conf"
done
echo "== start all three"
for l in "${leaders[@]}"; do
    nsenter -t "$l" -a systemctl start --no-block etcd
done
for l in "${leaders[@]}"; do
    for _ in $(seq 120); do
        [ "$(nsenter -t "$l" -a systemctl is-active etcd || true)" = active ] && break
        sleep 0.5
    done
    [ "$(nsenter -t "$l" -a systemctl is-active etcd)" = active ]
done
export ETCDCTL_API=3
[ "$("$etcdctl" --endpoints="127.0.0.1:${cports[0]}" member list | grep -c ', started, m')" = 3 ]
[ "$("$etcdctl" --endpoints="127.0.0.1:${cports[0]}" put k from-m1)" = OK ]
[ "$("$etcdctl" --endpoints="127.0.0.1:${cports[2]}" get k --print-value-only)" = from-m1 ]
echo "cluster test passed"
