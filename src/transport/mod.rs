//! HTTP: the EAI endpoints eaibus offers (REST and SOAP) and the client it delivers with.

pub mod auth;
pub mod client;
pub mod server;
pub mod soap;

/// rustls needs one process-wide crypto provider; ring builds with a C compiler alone.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
