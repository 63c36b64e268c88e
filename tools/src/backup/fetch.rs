//! `etcd-backup fetch NAME|--latest -o FILE`: download an archive, decompress it and check it
//! against its metadata (size, sha256) and its own snapshot trailer before it gets its name.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::archive::Meta;
use super::store::Store;
use super::{Error, Settings};
use crate::commands::snapshot::TrailerCheck;

pub async fn run(s: &Settings, store: &Store) -> Result<String, Error> {
    let arg = s.archive_arg("fetch")?;
    let out = s.get("output");
    if out.is_empty() {
        return Err(Error::usage(
            "fetch needs -o FILE: where to write the snapshot",
        ));
    }
    let name = store.resolve(arg.as_deref()).await?;
    let meta = download(store, &name, Path::new(&out)).await?;
    Ok(format!(
        "fetched {} into {out}: revision {}, {} bytes, sha256 {}\n",
        store.url(&name),
        meta.revision,
        meta.size,
        meta.sha256
    ))
}

/// Decompressed bytes go to the file and through the checks.
struct Sink {
    file: std::fs::File,
    sha: Sha256,
    check: TrailerCheck,
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.file.write_all(b)?;
        self.sha.update(b);
        self.check.update(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Downloads `name` into `out` (through `out.part`, removed on failure) and checks it;
/// returns its metadata.
pub async fn download(store: &Store, name: &str, out: &Path) -> Result<Meta, Error> {
    let meta = store.meta(name).await?;
    if meta.compression != "zstd" {
        return Err(Error::corrupt(format!(
            "{name}: unknown compression {:?}",
            meta.compression
        )));
    }
    let part = PathBuf::from(format!("{}.part", out.display()));
    let r = download_to(store, name, &meta, &part).await;
    match r {
        Ok(()) => {
            std::fs::rename(&part, out).map_err(|e| {
                let _ = std::fs::remove_file(&part);
                Error::failed(format!(
                    "rename {} to {}: {e}",
                    part.display(),
                    out.display()
                ))
            })?;
            Ok(meta)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

async fn download_to(store: &Store, name: &str, meta: &Meta, part: &Path) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(part)
        .map_err(|e| Error::failed(format!("create {}: {e}", part.display())))?;
    let damaged = |why: String| Error::corrupt(format!("archive {name} is damaged: {why}"));
    let mut decoder = zstd::stream::write::Decoder::new(Sink {
        file,
        sha: Sha256::new(),
        check: TrailerCheck::default(),
    })
    .map_err(|e| Error::failed(format!("zstd: {e}")))?;
    let mut body = store.get(name).await?;
    let progress = std::io::stderr().is_terminal();
    let mut got = 0u64;
    while let Some(chunk) = body.next().await? {
        got += chunk.len() as u64;
        decoder.write_all(&chunk).map_err(|e| {
            if e.kind() == std::io::ErrorKind::Other || e.kind() == std::io::ErrorKind::InvalidData
            {
                damaged(format!("zstd: {e}"))
            } else {
                Error::failed(format!("write {}: {e}", part.display()))
            }
        })?;
        if progress {
            eprint!("\r{name}: {} MiB downloaded", got >> 20);
        }
    }
    if progress {
        eprintln!();
    }
    decoder.flush().map_err(|e| damaged(format!("zstd: {e}")))?;
    let sink = decoder.into_inner();
    if sink.check.size != meta.size {
        return Err(damaged(format!(
            "{} bytes after decompression, its metadata says {}",
            sink.check.size, meta.size
        )));
    }
    let sha = retcd::snapshot::hex(&sink.sha.finalize());
    if sha != meta.sha256 {
        return Err(damaged(format!(
            "sha256 {sha}, its metadata says {}",
            meta.sha256
        )));
    }
    sink.check.finish().map_err(|e| damaged(format!("{e:?}")))?;
    sink.file
        .sync_all()
        .map_err(|e| Error::failed(format!("fsync {}: {e}", part.display())))?;
    Ok(())
}

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(parent: &Path, what: &str) -> Result<Scratch, Error> {
        let p = parent.join(format!(".etcd-backup-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)
            .map_err(|e| Error::failed(format!("create {}: {e}", p.display())))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
