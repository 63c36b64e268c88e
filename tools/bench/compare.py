#!/usr/bin/env python3
"""Side by side: a 3-member real etcd cluster (Debian's etcd 3.4.23) and a 3-member retcd
cluster on 127.0.0.1 with the same settings, the same etcd-bench workloads against each, one
after the other, several rounds; prints ours/etcd ratios of the medians, then peak RSS per
member and on-disk size after loading the same keys.

Usage: tools/bench/compare.py [--rounds 3] [--keys 1000000] [--scale 1.0] [--only put-1,...]
Needs release binaries (cargo build --release --bins): --bin-dir, default
$CARGO_TARGET_DIR/release or /var/cache/retcd-target/release. Every process it starts is
killed by PID at the end; data lives in a temporary directory that is removed.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


_given_ports = set()


def free_port():
    # The kernel may hand out a port again once it is closed: never give one out twice.
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port


class Cluster:
    def __init__(self, kind, binary, root, extra):
        self.kind, self.binary, self.procs = kind, binary, []
        self.members = []
        for i in range(3):
            self.members.append({
                "name": f"{kind}{i + 1}",
                "client": free_port(),
                "peer": free_port(),
                "dir": os.path.join(root, f"{kind}{i + 1}.etcd"),
            })
        ic = ",".join(f"{m['name']}=http://127.0.0.1:{m['peer']}" for m in self.members)
        for m in self.members:
            args = [
                binary, "--name", m["name"], "--data-dir", m["dir"],
                "--listen-client-urls", f"http://127.0.0.1:{m['client']}",
                "--advertise-client-urls", f"http://127.0.0.1:{m['client']}",
                "--listen-peer-urls", f"http://127.0.0.1:{m['peer']}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{m['peer']}",
                "--initial-cluster", ic, "--initial-cluster-token", f"bench-{kind}",
                "--initial-cluster-state", "new", *extra,
            ]
            log = open(os.path.join(root, f"{m['name']}.log"), "w")
            env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
            p = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
            m["pid"] = p.pid
            self.procs.append(p)
        deadline = time.time() + 60
        for m in self.members:
            while True:
                try:
                    body = urllib.request.urlopen(
                        f"http://127.0.0.1:{m['client']}/health", timeout=1).read()
                    if b'"true"' in body:
                        break
                except Exception:
                    pass
                if time.time() > deadline:
                    self.stop()
                    raise SystemExit(f"{kind}: {m['name']} not healthy within 60s")
                time.sleep(0.1)

    def endpoints(self):
        return ",".join(f"127.0.0.1:{m['client']}" for m in self.members)

    def follower(self, etcdctl):
        """The client endpoint of a member that is not the leader."""
        r = subprocess.run([etcdctl, "--endpoints", self.endpoints(), "endpoint", "status",
                            "-w", "json"], capture_output=True, text=True, timeout=30)
        for s in json.loads(r.stdout or "[]"):
            st = s["Status"]
            if st["leader"] != st["header"]["member_id"]:
                return s["Endpoint"]
        raise SystemExit(f"{self.kind}: no follower found: {r.stderr}")

    def rss_kib(self):
        out = []
        for m in self.members:
            peak = cur = 0
            with open(f"/proc/{m['pid']}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = int(line.split()[1])
                    if line.startswith("VmRSS:"):
                        cur = int(line.split()[1])
            out.append((peak, cur))
        return out

    def disk_bytes(self):
        total = 0
        for m in self.members:
            for dp, _, files in os.walk(m["dir"]):
                for f in files:
                    try:
                        total += os.path.getsize(os.path.join(dp, f))
                    except OSError:
                        pass
        return total // len(self.members)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def bench(bench_bin, endpoints, args):
    cmd = [bench_bin, "--endpoints", endpoints, "-w", "json", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr}")
    reports = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    return reports[-1]


def workloads(scale):
    n = lambda x: str(max(1, int(x * scale)))
    v = ["--key-size", "8", "--val-size", "256"]
    put1 = ["put", "--conns", "1", "--clients", "1", "--total", n(2000),
            "--key-space-size", "100000", *v]
    return [
        # One client writing to the leader, as etcd's own write benchmark does (its
        # performance guide's 1-client put row uses --target-leader); then through a follower,
        # which hands every write on to the leader.
        ("put-1", ["--target-leader", *put1]),
        ("put-1-follower", put1),
        ("put-1000", ["put", "--conns", "100", "--clients", "1000", "--total", n(50000),
                      "--key-space-size", "100000", *v]),
        ("range-l", ["range", "bench-key", "--consistency", "l", "--conns", "100",
                     "--clients", "1000", "--total", n(50000)]),
        ("range-s", ["range", "bench-key", "--consistency", "s", "--conns", "100",
                     "--clients", "1000", "--total", n(50000)]),
        ("txn-put", ["txn-put", "--conns", "10", "--clients", "100", "--total", n(20000),
                     "--key-space-size", "100000", *v]),
        ("watch-latency", ["watch-latency", "--clients", "10", "--conns", "10", "--total",
                           n(1000), "--put-rate", "200"]),
        ("lease-keepalive", ["lease-keepalive", "--conns", "10", "--clients", "100",
                             "--total", n(50000)]),
    ]


def print_table(chosen, results):
    print()
    print("| workload | etcd req/s | retcd req/s | ratio (ours/etcd) | etcd p99 ms | retcd p99 ms | p99 ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, _ in chosen:
        e, o = results[(name, "etcd")], results[(name, "retcd")]
        er, orr = statistics.median(x[0] for x in e), statistics.median(x[0] for x in o)
        ep, op = statistics.median(x[1] for x in e), statistics.median(x[1] for x in o)
        print(f"| {name} | {er:.0f} | {orr:.0f} | {orr / er:.2f} | {ep * 1000:.2f} | "
              f"{op * 1000:.2f} | {op / ep:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", "/var/cache/retcd-target")
    ap.add_argument("--bin-dir", default=os.path.join(target, "release"))
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    ours = os.path.join(a.bin_dir, "etcd")
    bench_bin = os.path.join(a.bin_dir, "etcd-bench")
    for b in (ours, bench_bin, a.etcd):
        if not os.path.exists(b):
            raise SystemExit(f"{b} not found (cargo build --release --bins; apt-get install etcd-server)")
    only = set(filter(None, a.only.split(",")))
    chosen = [w for w in workloads(a.scale) if not only or w[0] in only]
    root = tempfile.mkdtemp(prefix="retcd-bench-")
    results = {}  # (workload, kind) -> list of (rps, p99)
    print(f"# compare.py --rounds {a.rounds} --keys {a.keys} --scale {a.scale}"
          f"{' --only ' + a.only if a.only else ''}; {os.cpu_count()} CPUs", flush=True)
    try:
        for rnd in range(a.rounds):
            for kind, binary in (("etcd", a.etcd), ("retcd", ours)):
                d = os.path.join(root, f"r{rnd}-{kind}")
                os.makedirs(d)
                c = Cluster(kind, binary, d, [])
                try:
                    # warm-up: connections, the first raft entries
                    bench(bench_bin, c.endpoints(), ["put", "--total", "100"])
                    for name, args in chosen:
                        if name.startswith("range"):
                            # the key ranged over exists
                            subprocess.run([os.path.join(a.bin_dir, "etcdctl"), "--endpoints",
                                            c.endpoints(), "put", "bench-key", "x" * 256],
                                           capture_output=True)
                        eps = c.endpoints()
                        if name.endswith("-follower"):
                            eps = c.follower(os.path.join(a.bin_dir, "etcdctl"))
                        r = bench(bench_bin, eps, args)
                        p99 = r["percentiles"].get("p99", r["slowest"])
                        results.setdefault((name, kind), []).append(
                            (r["requests_per_second"], p99, r["errors"]))
                        print(f"round {rnd + 1} {kind:5} {name:16} {r['requests_per_second']:10.0f} req/s"
                              f"  p99 {p99 * 1000:8.2f} ms  errors {r['errors']}", flush=True)
                finally:
                    c.stop()
                    shutil.rmtree(d, ignore_errors=True)
        if a.rounds > 0:
            print_table(chosen, results)
        if a.keys > 0:
            print()
            print(f"| {a.keys} keys (8-byte keys, 256-byte values) | etcd | retcd | ratio |")
            print("|---|---:|---:|---:|")
            mem = {}
            for kind, binary in (("etcd", a.etcd), ("retcd", ours)):
                d = os.path.join(root, f"mem-{kind}")
                os.makedirs(d)
                c = Cluster(kind, binary, d, ["--quota-backend-bytes", str(8 << 30)])
                try:
                    bench(bench_bin, c.endpoints(), [
                        "put", "--conns", "10", "--clients", "100", "--total", str(a.keys),
                        "--sequential-keys", "--key-space-size", str(a.keys),
                        "--key-size", "8", "--val-size", "256"])
                    time.sleep(2)
                    rss = c.rss_kib()
                    mem[kind] = (max(p for p, _ in rss), max(r for _, r in rss), c.disk_bytes())
                finally:
                    c.stop()
                    shutil.rmtree(d, ignore_errors=True)
            for i, label in enumerate(["peak RSS per member (MiB)", "RSS after load (MiB)",
                                       "on-disk size per member (MiB)"]):
                e, o = mem["etcd"][i], mem["retcd"][i]
                div = 1024 if i < 2 else 1 << 20
                print(f"| {label} | {e / div:.0f} | {o / div:.0f} | {o / e:.2f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
