#!/bin/sh
# manpage.sh NAME BINARY VERSION: a man page from the program's own help text.
set -eu
name=$1 bin=$2 version=$3
case "$name" in
    etcd) what="etcd v3 member (retcd)"; help=$("$bin" --help 2>&1 || true) ;;
    etcdctl) what="command-line client for etcd v3 (retcd)"; help="etcdctl [global flags] COMMAND [flags] [args]

Commands: get put del txn compaction watch lease member endpoint move-leader alarm
defrag snapshot make-mirror lock elect auth user role check version completion.
Global flags: --endpoints --dial-timeout --command-timeout --user --password
--write-out (simple, json, fields, table, protobuf) --hex; each also as ETCDCTL_* variable.
Output and exit codes are those of etcd's etcdctl." ;;
    etcd-backup) what="snapshot archives of etcd in S3 or a directory (retcd)"; help=$("$bin" help 2>&1 || true) ;;
    *) what="offline tool for etcd v3 data (retcd)"; help="etcdutl snapshot status FILE
etcdutl snapshot restore FILE --name --initial-cluster --initial-cluster-token --initial-advertise-peer-urls --data-dir [--skip-hash-check]
etcdutl snapshot restore-cluster FILE --initial-cluster --initial-cluster-token --output-dir DIR
etcdutl hashkv DATA-DIR [--rev N]
etcdutl defrag --data-dir DATA-DIR
etcdutl version" ;;
esac
upper=$(echo "$name" | tr a-z A-Z)
printf '.TH %s 1 "" "retcd %s" "User Commands"\n.SH NAME\n%s \\- %s\n.SH SYNOPSIS\n.nf\n' "$upper" "$version" "$name" "$what"
printf '%s\n' "$help" | sed -e 's/\\/\\\\/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"
printf '.fi\n.SH SEE ALSO\n/usr/share/doc/retcd/README.md, /usr/share/doc/retcd/disaster-recovery.md, /usr/share/doc/retcd/backup.md\n'
