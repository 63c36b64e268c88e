//! Throwaway certificates for TLS tests, made with the `openssl` command line: a private CA,
//! a server certificate for 127.0.0.1 / localhost, a client certificate (EC key), and a
//! second CA that signed none of them.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Pki {
    pub dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn new_ca(dir: &Path, name: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            subject,
        ],
    );
}

/// Makes `<name>.pem` / `<name>.key` signed by `ca.pem`, with the extensions in `ext`.
fn signed(dir: &Path, name: &str, newkey: &[&str], subject: &str, ext: &str) {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let mut args = vec!["req", "-newkey"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&["-nodes", "-keyout", &key, "-out", &csr, "-subj", subject]);
    openssl(dir, &args);
    let ext_file = format!("{name}.ext");
    std::fs::write(dir.join(&ext_file), ext).expect("write extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &ext_file,
        ],
    );
}

impl Pki {
    /// Creates everything in `dir`.
    pub fn create(dir: &Path) -> Pki {
        new_ca(dir, "ca", "/CN=retcd test CA");
        new_ca(dir, "other-ca", "/CN=unrelated CA");
        signed(
            dir,
            "server",
            &["rsa:2048"],
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n",
        );
        signed(
            dir,
            "client",
            &["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            "/CN=client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    /// The path of one of the files (`ca.pem`, `server.key`, `client.pem`, ...) as a string.
    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}
