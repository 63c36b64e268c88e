//! A local directory as the archive store (`file:///DIR`), for sites without S3: `NAME` is
//! the archive, `NAME.json` its metadata, `.incomplete/<host>/` holds uploads in progress and
//! `.verified/NAME` marks archives `verify` proved restorable. Everything is fsynced before it
//! is renamed into place.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::Object;
use crate::backup::archive::{self, Meta};
use crate::backup::Error;

/// Uploads older than this from other hosts are considered abandoned.
const STALE: Duration = Duration::from_secs(24 * 3600);

pub struct FileStore {
    dir: PathBuf,
}

pub struct FileUpload {
    dir: PathBuf,
    tmp: PathBuf,
    name: String,
    file: fs::File,
    size: u64,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::failed(format!("{what} {}: {e}", p.display()))
}

fn sync_dir(d: &Path) -> Result<(), Error> {
    fs::File::open(d)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("fsync", d, e))
}

impl FileStore {
    pub fn open(dir: &str) -> Result<FileStore, Error> {
        let dir = PathBuf::from(dir);
        fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        Ok(FileStore { dir })
    }

    pub fn url(&self, name: &str) -> String {
        format!("file://{}", self.dir.join(name).display())
    }

    pub fn cleanup(&self, host: &str) -> Result<Vec<String>, Error> {
        let root = self.dir.join(".incomplete");
        let mut removed = Vec::new();
        let Ok(hosts) = fs::read_dir(&root) else {
            return Ok(removed);
        };
        for h in hosts.flatten() {
            let mine = h.file_name().to_string_lossy() == host;
            let Ok(files) = fs::read_dir(h.path()) else {
                continue;
            };
            for f in files.flatten() {
                let old = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > STALE);
                if mine || old {
                    fs::remove_file(f.path()).map_err(|e| io("remove", &f.path(), e))?;
                    removed.push(f.path().display().to_string());
                }
            }
        }
        Ok(removed)
    }

    pub fn begin(&self, host: &str, name: &str) -> Result<FileUpload, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp_dir = self.dir.join(".incomplete").join(host);
        fs::create_dir_all(&tmp_dir).map_err(|e| io("create", &tmp_dir, e))?;
        let tmp = tmp_dir.join(name);
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("create", &tmp, e))?;
        Ok(FileUpload {
            dir: self.dir.clone(),
            tmp,
            name: name.to_string(),
            file,
            size: 0,
        })
    }

    pub fn list(&self) -> Result<Vec<Object>, Error> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)
            .map_err(|e| io("read", &self.dir, e))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if archive::parse(&name).is_none() || !self.dir.join(format!("{name}.json")).is_file() {
                continue;
            }
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(Object { name, size });
        }
        Ok(out)
    }

    pub fn meta(&self, name: &str) -> Result<Meta, Error> {
        let p = self.dir.join(format!("{name}.json"));
        let text = fs::read_to_string(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::failed(format!("no archive {name} in {}", self.dir.display()))
            } else {
                io("read", &p, e)
            }
        })?;
        Meta::from_json(&text).map_err(|e| Error::corrupt(format!("{}: {e}", p.display())))
    }

    pub fn get(&self, name: &str) -> Result<fs::File, Error> {
        let p = self.dir.join(name);
        fs::File::open(&p).map_err(|e| io("open", &p, e))
    }

    pub fn delete(&self, name: &str) -> Result<(), Error> {
        for p in [
            self.dir.join(name),
            self.dir.join(format!("{name}.json")),
            self.dir.join(".verified").join(name),
        ] {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("remove", &p, e)),
            }
        }
        sync_dir(&self.dir)
    }

    pub fn mark_verified(&self, name: &str) -> Result<(), Error> {
        let d = self.dir.join(".verified");
        fs::create_dir_all(&d).map_err(|e| io("create", &d, e))?;
        let p = d.join(name);
        fs::write(&p, format!("{}\n", archive::rfc3339(now_secs()))).map_err(|e| io("write", &p, e))
    }

    pub fn verified(&self) -> Result<HashSet<String>, Error> {
        let Ok(rd) = fs::read_dir(self.dir.join(".verified")) else {
            return Ok(HashSet::new());
        };
        Ok(rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl FileUpload {
    pub fn part(&mut self, data: &[u8]) -> Result<(), Error> {
        self.file
            .write_all(data)
            .map_err(|e| io("write", &self.tmp, e))?;
        self.size += data.len() as u64;
        Ok(())
    }

    pub fn complete(self, meta: &Meta) -> Result<u64, Error> {
        self.file
            .sync_all()
            .map_err(|e| io("fsync", &self.tmp, e))?;
        // The metadata first: an archive without it is not listed, one with it is complete.
        let json_tmp = self.tmp.with_extension("json.tmp");
        let json = self.dir.join(format!("{}.json", self.name));
        {
            let mut f = fs::File::create(&json_tmp).map_err(|e| io("create", &json_tmp, e))?;
            f.write_all(meta.to_json().as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| io("write", &json_tmp, e))?;
        }
        fs::rename(&json_tmp, &json).map_err(|e| io("rename", &json_tmp, e))?;
        let dst = self.dir.join(&self.name);
        fs::rename(&self.tmp, &dst).map_err(|e| io("rename", &self.tmp, e))?;
        sync_dir(&self.dir)?;
        Ok(self.size)
    }

    pub fn abort(self) -> Result<(), Error> {
        drop(self.file);
        fs::remove_file(&self.tmp).map_err(|e| io("remove", &self.tmp, e))
    }
}
