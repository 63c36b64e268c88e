fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_protos(
            &[
                "proto/kv.proto",
                "proto/auth.proto",
                "proto/rpc.proto",
                "proto/internal.proto",
                "proto/peer.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
