//! etcd-bench: etcd's `benchmark` load generator, for retcd and real etcd alike.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(retcd_tools::bench::main(args));
}
