//! Who a QUIC peer is: a self-signed certificate, named by the SHA-256 of
//! its DER (its fingerprint), with the key that goes with it.

use std::fmt;
use std::str::FromStr;

use quinn::rustls;
use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// The SHA-256 of a certificate's DER: what identifies a peer.
///
/// Displays as 64 lowercase hex digits. Parses from that, in either case,
/// optionally prefixed with `sha256:` and optionally with `:` between every
/// two digits (`AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of `cert`.
    pub fn of(cert: &CertificateDer<'_>) -> Self {
        Fingerprint(Sha256::digest(cert.as_ref()).into())
    }

    /// The fingerprint with these digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Fingerprint(bytes)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, IdentityError> {
        let hex = strip_prefix(s);
        let mut bytes = [0u8; 32];
        if hex.contains(':') {
            let mut pairs = hex.split(':');
            for byte in &mut bytes {
                let pair = pairs.next().ok_or(IdentityError::InvalidFingerprint)?;
                *byte = parse_pair(pair.as_bytes())?;
            }
            if pairs.next().is_some() {
                return Err(IdentityError::InvalidFingerprint);
            }
        } else {
            if hex.len() != 64 {
                return Err(IdentityError::InvalidFingerprint);
            }
            for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
                *byte = parse_pair(pair)?;
            }
        }
        Ok(Fingerprint(bytes))
    }
}

/// A peer's identity: a self-signed certificate and its private key.
///
/// Its [`Debug`] shows the fingerprint only, never the key.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// A fresh identity: an ECDSA P-256 key and a self-signed certificate
    /// for `name` (its subject alternative name and common name), valid
    /// from 1975 to 4096 as rcgen makes them. `name` should be a DNS name
    /// such as `dockwire`; peers ignore it, the fingerprint is what counts.
    pub fn generate(name: &str) -> Result<Self, IdentityError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key)?;
        Ok(Identity {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }

    /// An identity from a certificate and its key, checked to belong
    /// together (the key's public half is the certificate's).
    pub fn from_der(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, IdentityError> {
        let provider = rustls::crypto::ring::default_provider();
        // Parses the key with the provider that will sign with it, parses
        // the certificate, and compares their public keys.
        rustls::sign::CertifiedKey::from_der(vec![cert.clone()], key.clone_key(), &provider)
            .map_err(IdentityError::InvalidKeyPair)?;
        Ok(Identity { cert, key })
    }

    /// An identity from [`to_pem`](Self::to_pem)'s text: exactly one
    /// `CERTIFICATE` and one private key (`PRIVATE KEY`, `EC PRIVATE KEY`
    /// or `RSA PRIVATE KEY`), in any order; other sections are ignored.
    pub fn from_pem(text: &str) -> Result<Self, IdentityError> {
        let mut cert = None;
        let mut key = None;
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(text.as_bytes()) {
            let (kind, der) = section?;
            let slot = match kind {
                SectionKind::Certificate => {
                    let der = CertificateDer::from(der);
                    cert.replace(der).map(drop)
                }
                SectionKind::PrivateKey
                | SectionKind::EcPrivateKey
                | SectionKind::RsaPrivateKey => {
                    let Some(der) = PrivateKeyDer::from_pem(kind, der) else {
                        continue;
                    };
                    key.replace(der).map(drop)
                }
                _ => None,
            };
            if slot.is_some() {
                return Err(IdentityError::DuplicatePemSection);
            }
        }
        let cert = cert.ok_or(IdentityError::MissingCertificate)?;
        let key = key.ok_or(IdentityError::MissingKey)?;
        Identity::from_der(cert, key)
    }

    /// The certificate in PEM followed by the private key in PEM, one text
    /// that [`from_pem`](Self::from_pem) reads back. It holds the secret key.
    pub fn to_pem(&self) -> String {
        let config = ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF);
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        ::pem::encode_many_config(
            &[
                ::pem::Pem::new("CERTIFICATE", self.cert.as_ref()),
                ::pem::Pem::new(label, self.key.secret_der()),
            ],
            config,
        )
    }

    /// The certificate's fingerprint: what peers know this identity by.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert)
    }

    /// The certificate (DER).
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The private key (DER).
    pub fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// What can go wrong making, reading or using an identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A fingerprint was not 32 bytes of hex in an accepted spelling.
    #[error(
        "not a SHA-256 fingerprint: expected 64 hex digits, optionally `sha256:`-prefixed and `:`-separated"
    )]
    InvalidFingerprint,
    /// rcgen could not make the certificate (the name is not a usable DNS name…).
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The PEM text is malformed (a section without its end, bad base64…).
    #[error("malformed PEM: {0}")]
    Pem(#[from] pem::Error),
    /// The PEM text has no `CERTIFICATE` section.
    #[error("the PEM text has no certificate")]
    MissingCertificate,
    /// The PEM text has no private key section.
    #[error("the PEM text has no private key")]
    MissingKey,
    /// The PEM text has more than one certificate or more than one key.
    #[error("the PEM text has more than one certificate or private key")]
    DuplicatePemSection,
    /// The key is unusable, the certificate unparsable, or the key not the
    /// certificate's.
    #[error("the certificate and key do not make an identity: {0}")]
    InvalidKeyPair(rustls::Error),
    /// rustls refused the TLS configuration built from the identity.
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
    /// The crypto provider lacks the cipher suite QUIC's handshake needs.
    #[error("QUIC configuration: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

fn strip_prefix(s: &str) -> &str {
    const PREFIX: &str = "sha256:";
    s.get(..PREFIX.len())
        .filter(|head| head.eq_ignore_ascii_case(PREFIX))
        .and_then(|_| s.get(PREFIX.len()..))
        .unwrap_or(s)
}

fn parse_pair(pair: &[u8]) -> Result<u8, IdentityError> {
    let [high, low] = pair else {
        return Err(IdentityError::InvalidFingerprint);
    };
    Ok((hex_digit(*high)? << 4) | hex_digit(*low)?)
}

fn hex_digit(c: u8) -> Result<u8, IdentityError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(IdentityError::InvalidFingerprint),
    }
}
