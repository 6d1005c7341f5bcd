//! TLS helpers: a test CA and server certificates made with rcgen, written to PEM files, and
//! rustls clients (WebSocket over TLS, raw TLS streams) that trust that CA.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::protocol::WebSocket;

use super::WAIT;

/// A WebSocket client over TLS.
pub type Wss = WebSocket<StreamOwned<ClientConnection, TcpStream>>;

/// A test certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

/// A server certificate and key in PEM files.
pub struct Leaf {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new() -> Ca {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "corepush test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "corepush-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Ca { issuer, dir }
    }

    /// A certificate for `localhost` with this common name, signed by the CA, in
    /// `<dir>/<file>.pem` and `<dir>/<file>.key`.
    pub fn leaf(&self, common_name: &str, file: &str) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let leaf = Leaf {
            cert_path: self.dir.join(format!("{file}.pem")),
            key_path: self.dir.join(format!("{file}.key")),
            der: cert.der().clone(),
        };
        std::fs::write(&leaf.cert_path, cert.pem()).unwrap();
        std::fs::write(&leaf.key_path, key.serialize_pem()).unwrap();
        leaf
    }

    /// The directory the PEM files go to.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// A client configuration that trusts this CA alone.
    pub fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

impl Drop for Ca {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking TLS stream to `addr` (server name `localhost`), handshake not yet done.
pub fn tls_stream(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> StreamOwned<ClientConnection, TcpStream> {
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.set_nodelay(true).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config.clone(), name).unwrap();
    StreamOwned::new(conn, sock)
}

/// A `wss://` client: TLS, then the WebSocket upgrade.
pub fn connect_wss(addr: SocketAddr, config: &Arc<ClientConfig>) -> Wss {
    let stream = tls_stream(addr, config);
    match tungstenite::client(format!("wss://localhost:{}/", addr.port()), stream) {
        Ok((ws, _)) => ws,
        Err(e) => panic!("wss handshake: {e}"),
    }
}

/// The certificate the server presented.
pub fn peer_cert(ws: &Wss) -> CertificateDer<'static> {
    ws.get_ref()
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("a server certificate")
        .clone()
        .into_owned()
}

/// Sends a [`Cmd`](super::Cmd) command and waits for its reply.
pub fn ask_wss(ws: &mut Wss, command: &str) -> String {
    ws.send(tungstenite::Message::text(command)).expect("send");
    recv_wss(ws)
}

/// The next text message (pings and pongs skipped).
pub fn recv_wss(ws: &mut Wss) -> String {
    loop {
        match ws.read().expect("a message") {
            tungstenite::Message::Text(t) => return t.to_string(),
            tungstenite::Message::Binary(b) => return String::from_utf8_lossy(&b).into_owned(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame, answers it, and returns its code.
pub fn wss_close_code(ws: &mut Wss) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => {
                let _ = ws.flush();
                return frame.map(|f| u16::from(f.code));
            }
            Ok(_) => {}
            Err(e) => panic!("expected a close frame, got {e}"),
        }
    }
}
