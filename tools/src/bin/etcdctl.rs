//! `etcdctl`: etcd's command-line client, output-compatible with etcdctl 3.4/3.5.

fn main() {
    std::process::exit(retcd_tools::etcdctl::main(
        std::env::args().skip(1).collect(),
    ));
}
