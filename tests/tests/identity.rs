//! QUIC identities: fingerprints, PEM, and mutual TLS by fingerprint over
//! real quinn on 127.0.0.1 (tokio).
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dockwire_service::quic::quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use dockwire_service::quic::quinn::rustls;
use dockwire_service::quic::{
    CertificateDer, Fingerprint, Identity, IdentityError, NameLookup, QuicConnect, QuicOptions,
    TrustCheck, mtls_server_config, peer_by_fingerprint, peer_fingerprint, pinned_client_config,
    refused_by_peer, serve_quic,
};
use dockwire_service::{CallContext, Client, Router};
use dockwire_tests::relay::{Faults, Relay};
use dockwire_tests::{Rt, limits};
use futures::FutureExt;
use quinn::ConnectionError;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use serde_json::{Value, json};

// ---- fingerprints ----

const HEX: &str = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";

fn with_colons(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn fingerprint_display_parses_back() {
    let fp: Fingerprint = HEX.parse().unwrap();
    assert_eq!(fp.to_string(), HEX);
    assert_eq!(fp.to_string().parse::<Fingerprint>().unwrap(), fp);
    assert_eq!(fp.as_bytes()[..3], [0x00, 0x11, 0x22]);
    assert_eq!(format!("{fp:?}"), format!("Fingerprint({HEX})"));
}

#[test]
fn fingerprint_accepts_prefix_colons_and_uppercase() {
    let fp: Fingerprint = HEX.parse().unwrap();
    let colons = with_colons(HEX);
    for spelling in [
        format!("sha256:{HEX}"),
        format!("SHA256:{}", HEX.to_uppercase()),
        HEX.to_uppercase(),
        colons.clone(),
        colons.to_uppercase(),
        format!("sha256:{colons}"),
        format!("Sha256:{}", colons.to_uppercase()),
    ] {
        assert_eq!(spelling.parse::<Fingerprint>().unwrap(), fp, "{spelling}");
    }
}

#[test]
fn fingerprint_refuses_wrong_lengths_and_non_hex() {
    let colons = with_colons(HEX);
    for bad in [
        String::new(),
        "sha256:".to_owned(),
        HEX[..63].to_owned(),
        format!("{HEX}0"),
        format!("{HEX}00"),
        format!("g{}", &HEX[1..]),
        format!("{}é", &HEX[..62]),
        format!(" {}", &HEX[1..]),
        format!("{HEX} "),
        format!("sha1:{HEX}"),
        format!("sha256:sha256:{HEX}"),
        format!("{colons}:"),
        format!(":{colons}"),
        format!("{colons}:00"),
        colons[3..].to_owned(),
        colons.replacen(':', "", 1),
        colons.replacen(':', "::", 1),
    ] {
        assert!(
            matches!(
                bad.parse::<Fingerprint>(),
                Err(IdentityError::InvalidFingerprint)
            ),
            "{bad:?} parsed"
        );
    }
}

#[test]
fn fingerprint_is_the_sha256_of_the_der() {
    // FIPS 180-2's "abc" vector: `of` hashes exactly the bytes it is given.
    let abc = CertificateDer::from(b"abc".to_vec());
    assert_eq!(
        Fingerprint::of(&abc).to_string(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );

    let identity = Identity::generate("dockwire").unwrap();
    let path = std::env::temp_dir().join(format!("dockwire-cert-{}.der", std::process::id()));
    std::fs::write(&path, identity.cert().as_ref()).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(out.status.success());
    let out = String::from_utf8(out.stdout).unwrap();
    let sum = out.split_whitespace().next().unwrap();
    assert_eq!(identity.fingerprint().to_string(), sum);
    assert_eq!(Fingerprint::of(identity.cert()), identity.fingerprint());
}

// ---- identities ----

fn split_pem(text: &str) -> (&str, &str) {
    text.split_at(text.find("-----BEGIN PRIVATE KEY").unwrap())
}

#[test]
fn identity_pem_round_trip_keeps_the_fingerprint() {
    let identity = Identity::generate("dockwire").unwrap();
    let text = identity.to_pem();
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"), "{text}");
    let (_, key) = split_pem(&text);
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
    let back = Identity::from_pem(&text).unwrap();
    assert_eq!(back.fingerprint(), identity.fingerprint());
    assert_eq!(back.key().secret_der(), identity.key().secret_der());
    assert_eq!(back.to_pem(), text);
}

#[test]
fn generated_identities_differ() {
    let a = Identity::generate("dockwire").unwrap();
    let b = Identity::generate("dockwire").unwrap();
    assert_ne!(a.fingerprint(), b.fingerprint());
}

#[test]
fn identity_debug_shows_the_fingerprint_not_the_key() {
    let identity = Identity::generate("dockwire").unwrap();
    let debug = format!("{identity:?}");
    assert!(
        debug.contains(&identity.fingerprint().to_string()),
        "{debug}"
    );
    assert!(!debug.contains("key"), "{debug}");
}

#[test]
fn pem_missing_a_part_is_a_typed_error() {
    let identity = Identity::generate("dockwire").unwrap();
    let text = identity.to_pem();
    let (cert, key) = split_pem(&text);
    assert!(matches!(
        Identity::from_pem(cert),
        Err(IdentityError::MissingKey)
    ));
    assert!(matches!(
        Identity::from_pem(key),
        Err(IdentityError::MissingCertificate)
    ));
    for garbage in ["", "garbage", "\u{0}\u{1}binary"] {
        assert!(matches!(
            Identity::from_pem(garbage),
            Err(IdentityError::MissingCertificate)
        ));
    }
}

#[test]
fn malformed_pem_is_a_typed_error() {
    let unterminated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    assert!(matches!(
        Identity::from_pem(unterminated),
        Err(IdentityError::Pem(_))
    ));
    let not_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        Identity::from_pem(not_base64),
        Err(IdentityError::Pem(_))
    ));
    let not_a_certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let text = Identity::generate("dockwire").unwrap().to_pem();
    let (_, key) = split_pem(&text);
    assert!(matches!(
        Identity::from_pem(&format!("{not_a_certificate}{key}")),
        Err(IdentityError::InvalidKeyPair(_))
    ));
}

#[test]
fn pem_with_two_certificates_is_a_typed_error() {
    let identity = Identity::generate("dockwire").unwrap();
    let text = identity.to_pem();
    let (cert, _) = split_pem(&text);
    assert!(matches!(
        Identity::from_pem(&format!("{cert}{text}")),
        Err(IdentityError::DuplicatePemSection)
    ));
}

#[test]
fn another_identitys_key_is_refused() {
    let a = Identity::generate("dockwire").unwrap();
    let b = Identity::generate("dockwire").unwrap();
    assert!(matches!(
        Identity::from_der(a.cert().clone(), b.key().clone_key()),
        Err(IdentityError::InvalidKeyPair(_))
    ));
    let (a_pem, b_pem) = (a.to_pem(), b.to_pem());
    let mixed = format!("{}{}", split_pem(&a_pem).0, split_pem(&b_pem).1);
    assert!(matches!(
        Identity::from_pem(&mixed),
        Err(IdentityError::InvalidKeyPair(_))
    ));
}

#[test]
fn a_name_rcgen_cannot_encode_is_a_typed_error() {
    // Not ASCII, so not a DNS subject alternative name.
    assert!(matches!(
        Identity::generate("dökwire"),
        Err(IdentityError::Generate(_))
    ));
}

// ---- mutual TLS over quinn ----

fn local() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

/// Runs `f` on the tokio runtime, failing it if it hangs.
fn block_on<F: Future>(f: F) -> F::Output {
    Rt::Tokio.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .expect("the test hung")
    })
}

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out")
}

/// A trust closure that notes every fingerprint it is asked about and
/// says yes to `allowed`.
#[derive(Clone, Default)]
struct Trust {
    allowed: Arc<Mutex<Vec<Fingerprint>>>,
    asked: Arc<Mutex<Vec<Fingerprint>>>,
}

impl Trust {
    fn allowing(fingerprints: &[Fingerprint]) -> Self {
        let trust = Trust::default();
        trust.allowed.lock().unwrap().extend(fingerprints);
        trust
    }

    fn check(&self) -> TrustCheck {
        let trust = self.clone();
        Arc::new(move |fp: &Fingerprint| {
            trust.asked.lock().unwrap().push(*fp);
            trust.allowed.lock().unwrap().contains(fp)
        })
    }

    fn asked(&self) -> Vec<Fingerprint> {
        self.asked.lock().unwrap().clone()
    }
}

/// A dockwire server on 127.0.0.1 whose one operation, `peer/whoami`,
/// answers the calling peer's name.
struct Server {
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    /// How often the service was invoked.
    calls: Arc<AtomicUsize>,
}

impl Server {
    fn start(config: quinn::ServerConfig, names: NameLookup) -> Self {
        let endpoint = Rt::Tokio
            .runtime()
            .quic_endpoint(local(), Some(config))
            .unwrap();
        let addr = endpoint.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let service = Router::new().query("peer/whoami", move |ctx: CallContext, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok(json!(&*ctx.peer)) }
        });
        let spawn = Rt::Tokio.spawner();
        let serve = serve_quic(
            endpoint.clone(),
            Arc::new(service),
            spawn.clone(),
            limits(),
            peer_by_fingerprint(names),
        );
        spawn.spawn(serve.boxed());
        Server {
            endpoint,
            addr,
            calls,
        }
    }

    fn mtls(identity: &Identity, authorize: TrustCheck, names: NameLookup) -> Self {
        let config = mtls_server_config(identity, authorize, &QuicOptions::default()).unwrap();
        Server::start(config, names)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.endpoint.close(0u32.into(), b"test over");
    }
}

fn no_names() -> NameLookup {
    Arc::new(|_: &Fingerprint| None)
}

fn named(fingerprint: Fingerprint, name: &'static str) -> NameLookup {
    Arc::new(move |fp: &Fingerprint| (*fp == fingerprint).then(|| name.into()))
}

fn dialer(config: quinn::ClientConfig) -> quinn::Endpoint {
    let mut endpoint = Rt::Tokio.runtime().quic_endpoint(local(), None).unwrap();
    endpoint.set_default_client_config(config);
    endpoint
}

fn pinned_dialer(identity: &Identity, pin: TrustCheck) -> quinn::Endpoint {
    dialer(pinned_client_config(identity, pin, &QuicOptions::default()).unwrap())
}

/// Why a connection ended before serving a call.
#[derive(Debug)]
struct Refusal {
    /// It failed to connect (else its first call failed).
    at_connect: bool,
    /// How the connection ended.
    reason: ConnectionError,
}

impl Refusal {
    /// The TLS alert it ended with, and whether the peer (rather than
    /// this side) sent it.
    fn alert(&self) -> Option<(u8, By)> {
        let (code, by) = match &self.reason {
            ConnectionError::ConnectionClosed(close) => (close.error_code, By::Peer),
            ConnectionError::TransportError(e) => (e.code, By::Us),
            _ => return None,
        };
        let code = u64::from(code).checked_sub(0x100)?;
        Some((u8::try_from(code).ok()?, by))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum By {
    Peer,
    Us,
}

// TLS alerts (RFC 8446).
const ACCESS_DENIED: u8 = 49;
const DECRYPT_ERROR: u8 = 51;
const CERTIFICATE_REQUIRED: u8 = 116;

/// Connects and calls `peer/whoami` once.
async fn connect_and_call(dialer: &quinn::Endpoint, server: &Server) -> Result<Client, Refusal> {
    let connect = match within(QuicConnect::connect(dialer, server.addr, "dockwire")).await {
        Ok(connect) => connect,
        Err(e) => {
            let reason = e
                .get_ref()
                .and_then(|e| e.downcast_ref::<ConnectionError>());
            return Err(Refusal {
                at_connect: true,
                reason: reason.unwrap().clone(),
            });
        }
    };
    let connection = connect.connection().clone();
    let client = Rt::Tokio.runtime().client(Arc::new(connect), limits());
    if whoami(&client).await.is_err() {
        return Err(Refusal {
            at_connect: false,
            reason: connection.close_reason().unwrap(),
        });
    }
    Ok(client)
}

/// Why `connect_and_call` failed.
fn refusal(result: Result<Client, Refusal>) -> Refusal {
    match result {
        Ok(_) => panic!("the call was served"),
        Err(refusal) => refusal,
    }
}

async fn whoami(client: &Client) -> Result<String, String> {
    let out = within(client.call("peer/whoami", json!({})))
        .await
        .map_err(|e| format!("call: {e}"))?;
    match out {
        Value::String(name) => Ok(name),
        other => Err(format!("not a name: {other}")),
    }
}

#[test]
fn an_authorized_clients_call_is_served_under_its_fingerprints_name() {
    block_on(async {
        let server_id = Identity::generate("dockwire").unwrap();
        let client_id = Identity::generate("dockwire").unwrap();
        let authorize = Trust::allowing(&[client_id.fingerprint()]);
        let server = Server::mtls(
            &server_id,
            authorize.check(),
            named(client_id.fingerprint(), "alice"),
        );
        let pin = Trust::allowing(&[server_id.fingerprint()]);
        let dialer = pinned_dialer(&client_id, pin.check());

        let connect = QuicConnect::connect(&dialer, server.addr, "dockwire")
            .await
            .unwrap();
        assert_eq!(
            peer_fingerprint(connect.connection()),
            Some(server_id.fingerprint())
        );
        let client = Rt::Tokio.runtime().client(Arc::new(connect), limits());
        assert_eq!(whoami(&client).await.unwrap(), "alice");
        assert_eq!(server.calls(), 1);
        assert_eq!(authorize.asked(), [client_id.fingerprint()]);
        assert_eq!(pin.asked(), [server_id.fingerprint()]);
    });
}

#[test]
fn a_client_the_name_lookup_does_not_know_is_named_by_its_fingerprint() {
    block_on(async {
        let server_id = Identity::generate("dockwire").unwrap();
        let client_id = Identity::generate("dockwire").unwrap();
        let authorize = Trust::allowing(&[client_id.fingerprint()]);
        let server = Server::mtls(&server_id, authorize.check(), no_names());
        let pin = Trust::allowing(&[server_id.fingerprint()]);
        let dialer = pinned_dialer(&client_id, pin.check());

        let client = connect_and_call(&dialer, &server).await.unwrap();
        let expected = format!("unknown:{}", client_id.fingerprint());
        assert_eq!(whoami(&client).await.unwrap(), expected);
    });
}

#[test]
fn an_unauthorized_client_cannot_complete_a_call() {
    block_on(async {
        let server_id = Identity::generate("dockwire").unwrap();
        let client_id = Identity::generate("dockwire").unwrap();
        let someone_else = Identity::generate("dockwire").unwrap();
        let authorize = Trust::allowing(&[someone_else.fingerprint()]);
        let server = Server::mtls(&server_id, authorize.check(), no_names());
        let pin = Trust::allowing(&[server_id.fingerprint()]);
        let dialer = pinned_dialer(&client_id, pin.check());

        let refused = refusal(connect_and_call(&dialer, &server).await);
        assert_eq!(
            refused.alert(),
            Some((ACCESS_DENIED, By::Peer)),
            "{refused:?}"
        );
        assert!(refused_by_peer(&refused.reason));
        assert_eq!(authorize.asked(), [client_id.fingerprint()]);
        assert_eq!(server.calls(), 0);
    });
}

#[test]
fn authorization_is_decided_at_each_handshake() {
    block_on(async {
        let server_id = Identity::generate("dockwire").unwrap();
        let client_id = Identity::generate("dockwire").unwrap();
        let allowed = Arc::new(AtomicBool::new(true));
        let asked = Arc::new(AtomicUsize::new(0));
        let authorize: TrustCheck = {
            let (allowed, asked) = (allowed.clone(), asked.clone());
            Arc::new(move |_: &Fingerprint| {
                asked.fetch_add(1, Ordering::SeqCst);
                allowed.load(Ordering::SeqCst)
            })
        };
        let server = Server::mtls(&server_id, authorize, no_names());
        let pin = Trust::allowing(&[server_id.fingerprint()]);
        // One client endpoint for both connections: had it kept a session
        // to resume, the second handshake would skip the closure.
        let dialer = pinned_dialer(&client_id, pin.check());

        let first = connect_and_call(&dialer, &server).await.unwrap();
        allowed.store(false, Ordering::SeqCst);
        let second = refusal(connect_and_call(&dialer, &server).await);
        assert!(refused_by_peer(&second.reason), "{second:?}");
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        // A connection let in before stays in.
        whoami(&first).await.unwrap();
        assert_eq!(server.calls(), 2);
        // And the server's mind can change back.
        allowed.store(true, Ordering::SeqCst);
        connect_and_call(&dialer, &server).await.unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn a_client_pinning_another_fingerprint_refuses_the_server() {
    block_on(async {
        let server_id = Identity::generate("dockwire").unwrap();
        let client_id = Identity::generate("dockwire").unwrap();
        let impostor = Identity::generate("dockwire").unwrap();
        let authorize = Trust::allowing(&[client_id.fingerprint()]);
        let server = Server::mtls(&server_id, authorize.check(), no_names());
        let pin = Trust::allowing(&[impostor.fingerprint()]);
        let dialer = pinned_dialer(&client_id, pin.check());

        let refused = refusal(connect_and_call(&dialer, &server).await);
        assert!(refused.at_connect);
        assert_eq!(
            refused.alert(),
            Some((ACCESS_DENIED, By::Us)),
            "{refused:?}"
        );
        assert!(!refused_by_peer(&refused.reason));
        assert_eq!(pin.asked(), [server_id.fingerprint()]);
        assert_eq!(server.calls(), 0);
    });
}

#[test]
fn any_server_name_is_accepted_since_the_fingerprint_is_the_identity() {
    block_on(async {
        let server_id = Identity::generate("dockwire").unwrap();
        let client_id = Identity::generate("dockwire").unwrap();
        let authorize = Trust::allowing(&[client_id.fingerprint()]);
        let server = Server::mtls(&server_id, authorize.check(), no_names());
        let pin = Trust::allowing(&[server_id.fingerprint()]);
        let dialer = pinned_dialer(&client_id, pin.check());

        for name in ["elsewhere.example", "127.0.0.1", "localhost"] {
            let connect = QuicConnect::connect(&dialer, server.addr, name)
                .await
                .unwrap();
            whoami(&Rt::Tokio.runtime().client(Arc::new(connect), limits()))
                .await
                .unwrap();
        }
    });
}

/// A client config built with rustls alone: it trusts the server
/// certificate `root` as a certificate authority (for the name
/// `dockwire`) and presents `client_cert`, if any.
fn plain_client(
    root: &CertificateDer<'static>,
    client_cert: Option<CertifiedKey>,
) -> quinn::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let tls = match client_cert {
        None => builder.with_no_client_auth(),
        Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
    };
    quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()))
}

/// `cert` with the key of `signer`: what someone who copied a public
/// certificate could present.
fn stolen(cert: &Identity, signer: &Identity) -> CertifiedKey {
    let provider = rustls::crypto::ring::default_provider();
    let key = provider
        .key_provider
        .load_private_key(signer.key().clone_key())
        .unwrap();
    CertifiedKey::new(vec![cert.cert().clone()], key)
}

#[test]
fn a_client_presenting_no_certificate_is_refused() {
    block_on(async {
        let server_id = Identity::generate("dockwire").unwrap();
        let authorize = Trust::default();
        let server = Server::mtls(&server_id, authorize.check(), no_names());
        let dialer = dialer(plain_client(server_id.cert(), None));

        let refused = refusal(connect_and_call(&dialer, &server).await);
        let expected = Some((CERTIFICATE_REQUIRED, By::Peer));
        assert_eq!(refused.alert(), expected, "{refused:?}");
        assert_eq!(authorize.asked(), []);
        assert_eq!(server.calls(), 0);
    });
}

#[test]
fn a_client_presenting_an_authorized_certificate_without_its_key_is_refused() {
    block_on(async {
        let server_id = Identity::generate("dockwire").unwrap();
        let alice = Identity::generate("dockwire").unwrap();
        let mallory = Identity::generate("dockwire").unwrap();
        let authorize = Trust::allowing(&[alice.fingerprint(), mallory.fingerprint()]);
        let server = Server::mtls(&server_id, authorize.check(), no_names());
        let dialer = dialer(plain_client(
            server_id.cert(),
            Some(stolen(&alice, &mallory)),
        ));

        let refused = refusal(connect_and_call(&dialer, &server).await);
        assert_eq!(
            refused.alert(),
            Some((DECRYPT_ERROR, By::Peer)),
            "{refused:?}"
        );
        // The signature failed before the closure was asked.
        assert_eq!(authorize.asked(), []);
        assert_eq!(server.calls(), 0);
    });
}

#[test]
fn a_server_presenting_the_pinned_certificate_without_its_key_is_refused() {
    block_on(async {
        let real = Identity::generate("dockwire").unwrap();
        let mallory = Identity::generate("dockwire").unwrap();
        let client_id = Identity::generate("dockwire").unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(stolen(&real, &mallory))));
        let config =
            quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).unwrap()));
        let server = Server::start(config, no_names());
        let pin = Trust::allowing(&[real.fingerprint()]);
        let dialer = pinned_dialer(&client_id, pin.check());

        let refused = refusal(connect_and_call(&dialer, &server).await);
        assert!(refused.at_connect);
        assert_eq!(
            refused.alert(),
            Some((DECRYPT_ERROR, By::Us)),
            "{refused:?}"
        );
        // A trust-on-first-use pin would have recorded nothing.
        assert_eq!(pin.asked(), []);
        assert_eq!(server.calls(), 0);
    });
}

// ---- transport options ----

#[test]
fn a_quiet_connection_lives_on_keep_alives_and_a_silent_peer_times_out() {
    block_on(async {
        // The default 10 s keep-alive is not below 1.5 s: 0.5 s is used.
        let options = QuicOptions::default().with_idle_timeout(Duration::from_millis(1500));
        let server_id = Identity::generate("dockwire").unwrap();
        let client_id = Identity::generate("dockwire").unwrap();
        let authorize = Trust::allowing(&[client_id.fingerprint()]);
        let config = mtls_server_config(&server_id, authorize.check(), &options).unwrap();
        let endpoint = Rt::Tokio
            .runtime()
            .quic_endpoint(local(), Some(config))
            .unwrap();
        let relay = Relay::start(endpoint.local_addr().unwrap(), Faults::none(), 1).unwrap();
        let accept = tokio::spawn({
            let endpoint = endpoint.clone();
            async move { endpoint.accept().await.unwrap().await.unwrap() }
        });
        let pin = Trust::allowing(&[server_id.fingerprint()]);
        let dialer = dialer(pinned_client_config(&client_id, pin.check(), &options).unwrap());
        let client = within(dialer.connect(relay.addr(), "dockwire").unwrap())
            .await
            .unwrap();
        let server = within(accept).await.unwrap();
        assert_eq!(peer_fingerprint(&server), Some(client_id.fingerprint()));

        // Quiet for well over the idle timeout: keep-alives hold it open.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(server.close_reason(), None);
        assert_eq!(client.close_reason(), None);

        relay.cut();
        let reason = within(server.closed()).await;
        assert_eq!(reason, ConnectionError::TimedOut);
        let reason = within(client.closed()).await;
        assert_eq!(reason, ConnectionError::TimedOut);
        // Both sides were still talking (keep-alives, then probes) into
        // the cut.
        let stats = relay.stats();
        assert!(
            stats.to_server.cut > 0 && stats.to_client.cut > 0,
            "{stats}"
        );
        endpoint.close(0u32.into(), b"test over");
    });
}
