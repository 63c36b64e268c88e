fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // The JSON gateway converts between JSON and etcd's messages through these.
        .file_descriptor_set_path(out.join("etcd_descriptors.bin"))
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
                "proto/v3lock.proto",
                "proto/v3election.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
