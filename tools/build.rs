fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The wire protocol is defined once, in the daemon's proto files; the tools only need clients.
    println!("cargo:rerun-if-changed=../daemon/proto");
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_protos(
            &[
                "../daemon/proto/kv.proto",
                "../daemon/proto/auth.proto",
                "../daemon/proto/rpc.proto",
            ],
            &["../daemon/proto"],
        )?;
    Ok(())
}
