# Shared by the systemd boot tests: a cached minimal Debian, and containers booted from it.
# Needs root, debootstrap and systemd-container.
cache=${RETCD_DEBIAN_ROOT:-/var/cache/retcd-debian-root}
work=$(mktemp -d /var/tmp/retcd-boot.XXXXXX)
pids=()

ensure_root_image() {
    if [ ! -x "$cache/usr/bin/systemctl" ]; then
        rm -rf "$cache.tmp"
        debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser bookworm \
            "$cache.tmp" http://deb.debian.org/debian >/dev/null
        mv "$cache.tmp" "$cache"
    fi
}

cleanup() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
set -E

# boot NAME DEB: boots a copy of the image with DEB in /root; sets LEADER to the container's
# init PID (not a subshell: the container must stay in `pids` for the cleanup).
boot() {
    local name=$1 deb=$2 dir="$work/$1" nspawn leader=""
    cp -a "$cache" "$dir"
    cp "$deb" "$dir/root/retcd.deb"
    systemd-nspawn --boot --console=pipe --register=no --keep-unit -D "$dir" \
        --machine "$name-$$" >"$work/$name.console" 2>&1 &
    nspawn=$!
    pids+=("$nspawn")
    for _ in $(seq 100); do
        leader=$(pgrep -P "$nspawn" | head -1 || true)
        if [ -n "$leader" ] && nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'; then
            break
        fi
        sleep 0.3
    done
    LEADER=$leader
}

# env_file NAME CLIENT_PORT PEER_PORT INITIAL_CLUSTER
env_file() {
    cat <<CONF
ETCD_NAME="$1"
ETCD_LISTEN_CLIENT_URLS="http://127.0.0.1:$2"
ETCD_ADVERTISE_CLIENT_URLS="http://127.0.0.1:$2"
ETCD_LISTEN_PEER_URLS="http://127.0.0.1:$3"
ETCD_INITIAL_ADVERTISE_PEER_URLS="http://127.0.0.1:$3"
ETCD_INITIAL_CLUSTER="$4"
ETCD_INITIAL_CLUSTER_TOKEN="boot-test"
CONF
}
