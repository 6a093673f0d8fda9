//! TLS for the simulators: a certificate authority made for the run (nothing is trusted by
//! default, as with a company's internal CA) and a server certificate for `127.0.0.1` and
//! `localhost` signed by it. Tests hand the CA's PEM to okrsync's `ca_file`; benchmarks
//! hand it to the peers' CA bundles.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// A CA and the server certificate it signed.
#[derive(Clone)]
pub struct TestCa {
    ca_pem: String,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

impl TestCa {
    /// A new CA named `name` (it appears as the issuer of the server certificate).
    pub fn generate(name: &str) -> anyhow::Result<TestCa> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "okrsync simulators");
        ca.distinguished_name = dn;
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "127.0.0.1");
        leaf.distinguished_name = dn;
        let leaf_key = KeyPair::generate()?;
        let cert = leaf.signed_by(&leaf_key, &issuer)?;

        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        );
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), issuer.der().clone()], key)
        .context("the server certificate")?;
        let mut config = config;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TestCa {
            ca_pem: issuer.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The CA certificate, PEM (what `ca_file` points at).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server side of a TLS handshake with the certificate (for a test's own server,
    /// an SMTP one upgraded by STARTTLS, say).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    pub(super) fn listener(&self, tcp: TcpListener) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: self.acceptor.clone(),
        }
    }
}

/// A TCP listener that hands axum only connections whose TLS handshake succeeded.
pub(super) struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.tcp.accept().await {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            // As a real server's front end does (nginx's `tcp_nodelay`): the last part of an
            // answer is not held back waiting for the client's delayed acknowledgement.
            let _ = tcp.set_nodelay(true);
            // A client that refuses our certificate closes the handshake: wait for the next.
            match tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => tracing::debug!(error = %e, "simulator: TLS handshake failed"),
                Err(_) => tracing::debug!("simulator: TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
