//! TLS towards etcd members, set up from etcdctl's flags the way clientv3 3.4 does it:
//!
//! * any of `--cert`, `--key`, `--cacert` given: TLS with that identity and those roots (the
//!   system's roots without `--cacert`); `--cert` and `--key` come together or not at all;
//! * none given and `--insecure-transport=false`: TLS with the system's roots;
//! * `--insecure-skip-tls-verify` drops the server certificate check of whatever TLS is on.
//!
//! Which endpoints use it: `http://` never, `https://` always (the system's roots when no TLS
//! flags are given), and a bare `host:port` whenever TLS is configured.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::client::Failure;
use crate::flags::Parsed;

/// The TLS settings of one side of a command (`""` for the cluster, `"dest-"` for
/// make-mirror's destination).
#[derive(Clone, Default)]
pub struct Security {
    /// TLS for endpoints without a scheme (None: plaintext).
    configured: Option<Arc<ClientConfig>>,
    /// The name certificates must carry instead of each endpoint's host: the discovery
    /// domain with `--insecure-discovery=false`, as etcdctl sets it.
    server_name: Option<String>,
}

/// TLS towards one endpoint.
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub server_name: Option<String>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A file's bytes, failing as Go's `os.Open` reports it.
fn read(path: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|e| Failure::bad_args(crate::client::go_path_error("open", path, &e)))
}

fn certificates(path: &str) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::bad_args(format!("{path}: not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(Failure::bad_args(format!(
            "{path}: no PEM certificate found (expected a \"-----BEGIN CERTIFICATE-----\" block)"
        )));
    }
    Ok(certs)
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

impl Security {
    /// Reads `<prefix>cert`, `<prefix>key`, `<prefix>cacert`, `<prefix>insecure-transport`
    /// and (for the cluster side only) `insecure-skip-tls-verify`.
    pub fn from_flags(f: &Parsed, prefix: &str) -> Result<Security, Failure> {
        let cert = f.get(&format!("{prefix}cert"));
        let key = f.get(&format!("{prefix}key"));
        let cacert = f.get(&format!("{prefix}cacert"));
        let insecure_transport = f.get(&format!("{prefix}insecure-transport")) != "false";
        let skip_verify = prefix.is_empty() && f.bool("insecure-skip-tls-verify");
        let domain = f.get("discovery-srv");
        let server_name =
            (prefix.is_empty() && !domain.is_empty() && f.get("insecure-discovery") == "false")
                .then_some(domain);
        if cert.is_empty()
            && key.is_empty()
            && cacert.is_empty()
            && server_name.is_none()
            && insecure_transport
        {
            return Ok(Security::default());
        }
        if (cert.is_empty() || key.is_empty()) && !(cert.is_empty() && key.is_empty()) {
            return Err(Failure::bad_args(format!(
                "KeyFile and CertFile must both be present[key: {key}, cert: {cert}]"
            )));
        }
        let roots = if cacert.is_empty() {
            system_roots()
        } else {
            let mut roots = RootCertStore::empty();
            for c in certificates(&cacert)? {
                roots.add(c).map_err(|e| {
                    Failure::bad_args(format!("{cacert}: unusable CA certificate: {e}"))
                })?;
            }
            roots
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Failure::error(format!("TLS setup: {e}")))?;
        let builder = if skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
        } else {
            builder.with_root_certificates(roots)
        };
        let mut config = if cert.is_empty() {
            builder.with_no_client_auth()
        } else {
            let chain = certificates(&cert)?;
            let pem = read(&key)?;
            let private = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                Failure::bad_args(format!(
                    "{key}: not a PEM private key (PKCS#1, PKCS#8 or SEC1): {e}"
                ))
            })?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| Failure::bad_args(format!("tls: {cert} and {key}: {e}")))?
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Security {
            configured: Some(Arc::new(config)),
            server_name,
        })
    }

    /// The TLS to use towards `endpoint` (as given in `--endpoints`), None for plaintext.
    pub fn for_endpoint(&self, endpoint: &str) -> Result<Option<Tls>, Failure> {
        let config = match endpoint.split_once("://").map(|(s, _)| s) {
            Some("https") => match &self.configured {
                Some(c) => c.clone(),
                None => {
                    let mut c = ClientConfig::builder_with_provider(provider())
                        .with_safe_default_protocol_versions()
                        .map_err(|e| Failure::error(format!("TLS setup: {e}")))?
                        .with_root_certificates(system_roots())
                        .with_no_client_auth();
                    c.alpn_protocols = vec![b"h2".to_vec()];
                    Arc::new(c)
                }
            },
            Some(_) => return Ok(None),
            None => match &self.configured {
                Some(c) => c.clone(),
                None => return Ok(None),
            },
        };
        Ok(Some(Tls {
            config,
            server_name: self.server_name.clone(),
        }))
    }
}

/// `--insecure-skip-tls-verify`: any server certificate is accepted (its handshake signature
/// still has to be valid).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Opens a TCP connection to `uri`'s host and port and runs the TLS handshake over it, naming
/// the server by `tls.server_name` or the URI's host (an IP address is checked against the
/// certificate's IP SANs).
pub async fn connect(
    tls: Arc<Tls>,
    uri: http::Uri,
) -> std::io::Result<hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>
{
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let host = uri
        .host()
        .ok_or_else(|| bad(format!("{uri}: no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    let shown = tls.server_name.clone().unwrap_or_else(|| host.clone());
    let name = ServerName::try_from(shown.trim_end_matches('.').to_string())
        .map_err(|e| bad(format!("{shown}: {e}")))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
        .connect(name, tcp)
        .await?;
    Ok(hyper_util::rt::TokioIo::new(stream))
}
