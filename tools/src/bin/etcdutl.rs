//! `etcdutl`: etcd's offline tool (snapshot status and restore, defrag), for retcd data.

fn main() {
    std::process::exit(retcd_tools::etcdutl::main(
        std::env::args().skip(1).collect(),
    ));
}
