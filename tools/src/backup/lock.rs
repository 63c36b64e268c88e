//! One run at a time per store on this host: an advisory lock (flock) on a file derived from
//! the store URL, held until the process ends, so a crashed run never leaves it held.

use std::os::unix::io::AsRawFd;

use super::{Error, Settings, EXIT_LOCKED};

pub struct Lock {
    _file: std::fs::File,
}

/// FNV-1a, to give each store its own lock file name.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub fn acquire(s: &Settings) -> Result<Lock, Error> {
    let name = format!("etcd-backup-{:016x}.lock", fnv(&s.get("store")));
    let candidates: Vec<std::path::PathBuf> = match s.get("lock-file") {
        p if !p.is_empty() => vec![p.into()],
        _ => vec![
            std::path::Path::new("/run/lock").join(&name),
            std::env::temp_dir().join(&name),
        ],
    };
    let mut opened = Err(Error::failed("no lock file"));
    for path in &candidates {
        opened = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map(|f| (f, path.clone()))
            .map_err(|e| Error::failed(format!("lock file {}: {e}", path.display())));
        if opened.is_ok() {
            break;
        }
    }
    let (file, path) = opened?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(Error {
            message: format!(
                "another etcd-backup run for this store holds {}; not starting a second one",
                path.display()
            ),
            code: EXIT_LOCKED,
        });
    }
    Ok(Lock { _file: file })
}
