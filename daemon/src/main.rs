//! `etcd`: the retcd member binary.

// glibc's malloc showed as ~17% of the CPU of a member under 1000 concurrent writers.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(retcd::run_main(std::env::args().collect()));
}
