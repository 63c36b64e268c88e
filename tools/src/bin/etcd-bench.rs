//! etcd-bench: etcd's `benchmark` load generator, for retcd and real etcd alike.

// The load generator should cost as little CPU as it can: it shares the machine with the
// members it measures (glibc's malloc/free were ~20% of its profile under 1000 clients).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(retcd_tools::bench::main(args));
}
