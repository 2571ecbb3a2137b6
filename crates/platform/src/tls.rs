//! The TLS listener (rustls, ring): the server's certificate, and, when a CA
//! bundle for participants is configured, client certificates asked for (or
//! required). The client certificate a connection showed is kept in the
//! connection's data as a [`PeerCertificate`] for the handlers (the gateway
//! maps it to a participant).

use std::any::Any;
use std::sync::Arc;

use actix_web::dev::Extensions;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use settings::TlsSettings;

/// The leaf certificate (DER) a TLS client presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub Vec<u8>);

/// Names the OpenSSL configuration (`gateway.openssl_conf`: the one loading
/// the ГОСТ engine) for OpenSSL to read when it starts. Called from `main`
/// before any thread or any OpenSSL use; an `OPENSSL_CONF` already in the
/// environment wins.
pub fn use_openssl_conf(path: Option<&str>) {
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        if std::env::var_os("OPENSSL_CONF").is_none() {
            std::env::set_var("OPENSSL_CONF", path);
        }
    }
}

fn read(what: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("http.tls.{what} {path}: {e}"))
}

/// The rustls server configuration the settings describe.
pub fn server_config(tls: &TlsSettings) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read("cert_file", &tls.cert_file)?)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("http.tls.cert_file {}: {e}", tls.cert_file))?;
    if certs.is_empty() {
        return Err(format!(
            "http.tls.cert_file {}: no certificate in it",
            tls.cert_file
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&read("key_file", &tls.key_file)?)
        .map_err(|e| format!("http.tls.key_file {}: {e}", tls.key_file))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if tls.require_client_cert && tls.client_ca_file.is_empty() {
        return Err("http.tls.require_client_cert needs http.tls.client_ca_file (the CAs that sign participants' certificates)".into());
    }
    let builder = if tls.client_ca_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(&read("client_ca_file", &tls.client_ca_file)?) {
            let ca =
                ca.map_err(|e| format!("http.tls.client_ca_file {}: {e}", tls.client_ca_file))?;
            roots
                .add(ca)
                .map_err(|e| format!("http.tls.client_ca_file {}: {e}", tls.client_ca_file))?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if tls.require_client_cert {
            verifier.build()
        } else {
            verifier.allow_unauthenticated().build()
        }
        .map_err(|e| format!("http.tls.client_ca_file {}: {e}", tls.client_ca_file))?;
        builder.with_client_cert_verifier(verifier)
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("http.tls: the certificate and key do not go together: {e}"))
}

/// Keeps the client certificate of a TLS connection for the handlers.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = conn.downcast_ref::<Tls>() {
        if let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            ext.insert(PeerCertificate(leaf.to_vec()));
        }
    }
}

/// Whether `der` is one of the PEM certificates in `pems`.
pub fn is_one_of(der: &[u8], pems: &[String]) -> bool {
    pems.iter().any(|pem| {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .filter_map(Result::ok)
            .any(|c| c.as_ref() == der)
    })
}
