//! Mutual TLS by fingerprint: each side presents an [`Identity`] and
//! accepts the other's certificate only if a caller's closure says yes to
//! its [`Fingerprint`], asked afresh at every handshake.

use std::fmt;
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::rustls;
use quinn::{Connection, ConnectionError, TransportErrorCode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme,
};

use super::{Fingerprint, Identity, IdentityError, PeerName, QuicOptions};

/// Says whether a peer's certificate fingerprint is trusted. Called once
/// per handshake, after the peer proved it holds the certificate's key.
pub type TrustCheck = Arc<dyn Fn(&Fingerprint) -> bool + Send + Sync>;

/// Names a peer by its fingerprint; `None` when it has no name (any more).
pub type NameLookup = Arc<dyn Fn(&Fingerprint) -> Option<Arc<str>> + Send + Sync>;

/// A server config presenting `identity` that requires every client to
/// present a certificate of its own and accepts it only if `authorize`
/// says yes to its fingerprint.
///
/// `authorize` is called at every handshake (sessions are never resumed,
/// so a client removed from the trust list is refused on its next
/// connection; connections already open stay open). It only ever sees
/// fingerprints of certificates whose key signed that handshake. A refused
/// client's handshake fails with
/// `CertificateError::ApplicationVerificationFailure`, before any of its
/// streams reaches the service.
pub fn mtls_server_config(
    identity: &Identity,
    authorize: TrustCheck,
    options: &QuicOptions,
) -> Result<quinn::ServerConfig, IdentityError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(FingerprintVerifier {
        trust: authorize,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(IdentityError::Tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert().clone()], identity.key().clone_key())
        .map_err(IdentityError::Tls)?;
    // A resumed session skips the client's certificate and with it
    // `authorize`: never issue anything to resume with.
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    tls.max_early_data_size = 0;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    config.transport_config(Arc::new(options.transport_config()));
    Ok(config)
}

/// A client config presenting `identity` that accepts a server only if
/// `pin` says yes to its certificate's fingerprint.
///
/// `pin` is called at every handshake (sessions are never resumed), only
/// after the server proved it holds the certificate's key, so a
/// trust-on-first-use `pin` may record what it is shown. The server name
/// given to `connect` is not checked (the fingerprint is the identity):
/// any valid name works.
pub fn pinned_client_config(
    identity: &Identity,
    pin: TrustCheck,
    options: &QuicOptions,
) -> Result<quinn::ClientConfig, IdentityError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(FingerprintVerifier {
        trust: pin,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(IdentityError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.cert().clone()], identity.key().clone_key())
        .map_err(IdentityError::Tls)?;
    // A resumed session skips the server's certificate and with it `pin`.
    tls.resumption = rustls::client::Resumption::disabled();
    tls.enable_early_data = false;
    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    config.transport_config(Arc::new(options.transport_config()));
    Ok(config)
}

/// The fingerprint of the certificate `connection`'s peer presented, once
/// the handshake is done; `None` if it presented none.
pub fn peer_fingerprint(connection: &Connection) -> Option<Fingerprint> {
    let identity = connection.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().map(Fingerprint::of)
}

/// Whether `error` ended a connection because the peer refused this side's
/// certificate: the TLS alert `access_denied`, which the verifiers here
/// send when `authorize` (or `pin`) says no. This is how a client learns
/// that the server does not trust its fingerprint, from the connection's
/// `close_reason()`; usually on its first call rather than at `connect`,
/// since a TLS 1.3 client finishes its handshake before the server has
/// judged its certificate.
pub fn refused_by_peer(error: &ConnectionError) -> bool {
    let access_denied = TransportErrorCode::crypto(AlertDescription::AccessDenied.into());
    matches!(error, ConnectionError::ConnectionClosed(close) if close.error_code == access_denied)
}

/// Names a connection's peer by looking its fingerprint up with `name`.
///
/// A peer `name` does not know (removed from the trust list since its
/// handshake, say) is `unknown:<fingerprint>`; a peer without a
/// certificate (a server config without client authentication) is
/// `unknown`.
pub fn peer_by_fingerprint(name: NameLookup) -> PeerName {
    Arc::new(move |connection: &Connection| -> Arc<str> {
        let Some(fingerprint) = peer_fingerprint(connection) else {
            return "unknown".into();
        };
        name(&fingerprint).unwrap_or_else(|| format!("unknown:{fingerprint}").into())
    })
}

/// Both sides' certificate verifier: a peer is its certificate's
/// fingerprint, trusted if `trust` says so.
///
/// rustls asks for the certificate first and for the handshake signature
/// made with its key second; `trust` is asked only once the signature
/// checked out, so it never sees a certificate presented by someone who
/// does not hold its key (a trust-on-first-use `trust` must not pin one).
/// The certificate is only parsed when it arrives, which also keeps
/// garbage from reaching the signature check.
struct FingerprintVerifier {
    trust: TrustCheck,
    algorithms: WebPkiSupportedAlgorithms,
}

impl FingerprintVerifier {
    fn parse(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        ParsedCertificate::try_from(end_entity).map(drop)
    }

    /// The verdict, once `signature` proved the peer holds `cert`'s key.
    fn decide(
        &self,
        cert: &CertificateDer<'_>,
        signature: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = signature?;
        if !(self.trust)(&Fingerprint::of(cert)) {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(valid)
    }
}

impl fmt::Debug for FingerprintVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FingerprintVerifier")
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for FingerprintVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.parse(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let signature = verify_tls12_signature(message, cert, dss, &self.algorithms);
        self.decide(cert, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let signature = verify_tls13_signature(message, cert, dss, &self.algorithms);
        self.decide(cert, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for FingerprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.parse(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let signature = verify_tls12_signature(message, cert, dss, &self.algorithms);
        self.decide(cert, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let signature = verify_tls13_signature(message, cert, dss, &self.algorithms);
        self.decide(cert, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
