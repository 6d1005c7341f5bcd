//! TLS settings of a server (feature `tls`): the certificate chain and key, read from PEM files,
//! and reloaded from them without a restart.
//!
//! The settings are shared: every clone of a [`TlsConfig`] (the one given to
//! [`ServerConfig::tls`](crate::ServerConfig::tls), the one a running server holds) sees a
//! reload. A core loop takes the current certificate when it accepts a client, so a reload
//! reaches the handshakes that start after it, and the connections already open keep the
//! session they have.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto::ring;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// A server's TLS settings: a certificate chain and its private key, from PEM files.
///
/// ```no_run
/// use corepush::{ServerConfig, TlsConfig};
///
/// # fn main() -> corepush::Result<()> {
/// let tls = TlsConfig::from_pem_files("cert.pem", "key.pem")?;
/// let config = ServerConfig::websocket("ws", "0.0.0.0:8443".parse().unwrap()).tls(tls);
/// # let _ = config;
/// # Ok(())
/// # }
/// ```
///
/// TLS 1.3 and 1.2 with rustls's safe defaults (the `ring` provider); no client certificates.
#[derive(Clone)]
pub struct TlsConfig {
    inner: Arc<Inner>,
}

struct Inner {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert_path", &self.inner.cert_path)
            .field("key_path", &self.inner.key_path)
            .finish()
    }
}

impl TlsConfig {
    /// Reads a certificate chain (the server's certificate first, then the intermediates) and
    /// its private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
    ///
    /// Fails with [`Error::Config`] naming the file when one cannot be read, holds no
    /// certificate or no key, or when the key does not fit the certificate.
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let cert_path = cert_chain.as_ref().to_path_buf();
        let key_path = key.as_ref().to_path_buf();
        let config = load(&cert_path, &key_path)?;
        Ok(TlsConfig {
            inner: Arc::new(Inner {
                cert_path,
                key_path,
                current: RwLock::new(config),
            }),
        })
    }

    /// Reads the files again and uses them for every handshake from now on; clients already
    /// connected keep their sessions. On an error the certificate in use stays, and the error
    /// names the file.
    pub fn reload(&self) -> Result<()> {
        let config = load(&self.inner.cert_path, &self.inner.key_path)?;
        *self.inner.current.write() = config;
        Ok(())
    }

    /// The certificate chain file.
    pub fn cert_path(&self) -> &Path {
        &self.inner.cert_path
    }

    /// The private key file.
    pub fn key_path(&self) -> &Path {
        &self.inner.key_path
    }

    /// The settings in force, for a connection being accepted.
    pub(crate) fn current(&self) -> Arc<rustls::ServerConfig> {
        self.inner.current.read().clone()
    }
}

/// Reads both files and builds the rustls settings from them.
fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let certs = read_certs(cert_path)?;
    let key = read_key(key_path)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::Config(format!(
                "TLS: the key in {} does not go with the certificate in {}: {e}",
                key_path.display(),
                cert_path.display()
            ))
        })?;
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read_file(path, "certificate chain")?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, "certificate chain", &e))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "TLS certificate chain {}: no CERTIFICATE in the PEM file",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let bytes = read_file(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => Error::Config(format!(
            "TLS private key {}: no PRIVATE KEY in the PEM file",
            path.display()
        )),
        e => pem_error(path, "private key", &e),
    })
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "TLS {what} {}: cannot read it: {e}",
            path.display()
        ))
    })
}

fn pem_error(path: &Path, what: &str, e: &pem::Error) -> Error {
    Error::Config(format!(
        "TLS {what} {}: not a valid PEM file: {e}",
        path.display()
    ))
}
