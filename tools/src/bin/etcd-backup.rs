//! etcd-backup: snapshot archives of an etcd cluster in S3 or a directory.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(retcd_tools::backup::main(args));
}
