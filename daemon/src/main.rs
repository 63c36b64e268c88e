//! `etcd`: the retcd member binary.

fn main() {
    std::process::exit(retcd::run_main(std::env::args().collect()));
}
