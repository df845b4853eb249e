//! HTTPS for the simulator, as every API server serves: a certificate authority made at
//! start, a serving certificate for 127.0.0.1 and localhost it signs, and a listener that
//! hands axum connections once their TLS handshake is done. Clients trust the CA through the
//! kubeconfig (`certificate-authority-data`); kubectl sends a bearer token only over TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A connection that sends no TLS handshake within this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The CA (PEM, for the kubeconfig) and the server's TLS configuration.
pub struct Certificates {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

/// A fresh CA and a serving certificate for `127.0.0.1` and `localhost`.
pub fn certificates() -> Result<Certificates, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let ca_key = KeyPair::generate().map_err(|e| fail("generating the CA key", &e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA parameters", &e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "disasterpiece-sim-ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| fail("signing the CA", &e))?;

    let key = KeyPair::generate().map_err(|e| fail("generating the server key", &e))?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .map_err(|e| fail("server certificate parameters", &e))?;
    params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let cert = params
        .signed_by(&key, &ca)
        .map_err(|e| fail("signing the server certificate", &e))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| fail("TLS configuration", &e))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Certificates {
        ca_pem: ca.pem(),
        server: Arc::new(server),
    })
}

/// Accepts TCP connections and completes their handshakes off the accept loop, so one slow
/// client holds up no other.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (send, ready) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                // Without TCP_NODELAY a request whose head and body arrive in two writes
                // (every PATCH and POST from kube) waits ~40 ms for a delayed ACK.
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let send = send.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        let _ = send.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            addr,
            acceptor: task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop is gone: the server is stopping.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
