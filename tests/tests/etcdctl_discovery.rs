//! `--discovery-srv`: endpoints from DNS SRV records, for our etcdctl and etcdctl 3.4.23 alike.
//! A small DNS server (Python, on 127.0.0.153:53) answers for `example.test`; both etcdctls
//! run in a private mount namespace whose /etc/resolv.conf points at it (`unshare -m`, so
//! the machine's resolver is untouched). Needs root, as the container tests do.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use retcd_tests::*;

const DNS: &str = r#"
import socket, struct, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.153", 53))
print("ready", flush=True)
def name(b):
    return b"".join(bytes([len(l)]) + l for l in b.rstrip(b".").split(b".")) + b"\0"
while True:
    q, addr = s.recvfrom(512)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i+1:i+1+q[i]]); i += 1 + q[i]
    qname = b".".join(labels).lower()
    qtype = struct.unpack(">H", q[i+1:i+3])[0]
    question = q[12:i+5]
    answers = []
    if qtype == 33 and qname == b"_etcd-client._tcp.example.test":
        rdata = struct.pack(">HHH", 0, 0, port) + name(b"m1.example.test")
        answers.append(rdata)
        rtype = 33
    elif qtype == 1 and qname == b"m1.example.test":
        answers.append(bytes([127, 0, 0, 1]))
        rtype = 1
    exists = qname == b"m1.example.test" or answers
    flags = 0x8180 if exists else 0x8183
    r = q[:2] + struct.pack(">HHHHH", flags, 1, len(answers), 0, 0) + question
    for a in answers:
        r += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 60, len(a)) + a
    s.sendto(r, addr)
"#;

struct Dns(Child);

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs etcdctl `bin` with `args` under a resolv.conf naming only the test DNS server.
fn in_namespace(resolv: &std::path::Path, bin: &std::path::Path, args: &[&str]) -> Outcome {
    let o = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
        ])
        .arg(resolv)
        .arg("timeout")
        .arg("30")
        .arg(bin)
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .output()
        .expect("run etcdctl in a mount namespace");
    (
        format!("etcdctl {}", args.join(" ")),
        o.status.code().unwrap_or(-1),
        out(&o),
        err_lines(&o),
    )
}

#[test]
fn discovery_srv_finds_the_members_as_etcdctl_does() {
    let etcd = Member::start(Flavor::RealEtcd);
    let tmp = tempfile::tempdir().unwrap();
    let resolv = tmp.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.153\n").unwrap();
    let mut child = Command::new("python3")
        .args(["-c", DNS, &etcd.client_port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the DNS server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _dns = Dns(child);
    assert_eq!(line, "ready\n");

    let cases: &[&[&str]] = &[
        &["--discovery-srv", "example.test", "put", "a", "1"],
        &["-d", "example.test", "get", "a"],
        &["--discovery-srv=example.test", "member", "list"],
        // Without --cluster, endpoint commands take --endpoints as given; with it, the
        // member list comes from a discovered endpoint.
        &[
            "--discovery-srv=example.test",
            "--endpoints=127.0.0.1:1",
            "--dial-timeout=1s",
            "endpoint",
            "status",
        ],
        &[
            "--discovery-srv=example.test",
            "endpoint",
            "health",
            "--cluster",
            "-w",
            "table",
        ],
        &[
            "--discovery-srv=example.test",
            "--dial-timeout=1s",
            "get",
            "nosuch.test",
        ],
        &["--discovery-srv=nosuch.test", "get", "a"],
        &[
            "--discovery-srv=example.test",
            "--discovery-srv-name=other",
            "get",
            "a",
        ],
        &[
            "--discovery-srv=example.test",
            "--insecure-discovery=false",
            "--endpoints=127.0.0.1:1",
            "--dial-timeout=1s",
            "get",
            "a",
        ],
    ];
    let mut diffs = Vec::new();
    for args in cases {
        let want = in_namespace(&resolv, &real_etcdctl(), args);
        let got = in_namespace(&resolv, &our_etcdctl(), args);
        // The health table's TOOK column varies.
        let took = |o: &Outcome| (o.0.clone(), o.1, o.2.contains("| true |"), o.3.clone());
        if args.contains(&"health") {
            assert_eq!(took(&want), took(&got), "{want:?}\n{got:?}");
            assert!(want.2.contains("| http://127.0.0.1:"), "{want:?}");
            continue;
        }
        diffs.extend(differences(&[want], &[got], "etcdctl 3.4.23", "ours"));
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    assert_eq!(
        in_namespace(&resolv, &our_etcdctl(), &["-d", "example.test", "get", "a"]).2,
        "a\n1\n"
    );
}
