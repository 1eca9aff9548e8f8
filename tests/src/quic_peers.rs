//! Peers over real QUIC with mutual TLS, as `dockwire serve` runs them:
//! each peer has an identity of its own, the server admits the keys its
//! [`Trust`] table holds (authorized-peers, in memory, changeable while
//! the server runs), each call's key is its peer's fingerprint
//! (`sha256:<hex>`), and a [`TrustWatch`] closes the connections of keys
//! whose trust changed.
//!
//! ```ignore
//! let peers = QuicPeers::new(&[("alice", Role::User), ("root", Role::Admin)]);
//! let config = Config::from_env().with_roles(peers.trust().roles());
//! let served = peers.serve(Arc::new(DockerService::new(docker, config)));
//! let alice = DockerClient::new(served.client("alice"));
//! ```
//!
//! [`QuicServed::client`] connects on its first call, so that it can be
//! made where a tokio runtime is current but nothing is awaited;
//! [`QuicServed::connect`] connects at once and keeps the connection, for
//! tests that watch it close.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use dockwire_core::Limits;
use dockwire_docker::{DockerClient, Role, Roles};
use dockwire_service::quic::{
    Fingerprint, Identity, QuicConnect, QuicOptions, Standing, TRUST_CHANGED, TrustCheck,
    TrustWatch, mtls_server_config, peer_by_fingerprint, pinned_client_config, serve_quic_watched,
};
use dockwire_service::{BoxRead, BoxWrite, Client, Connect, SendHalf, Service};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::{Rt, sleep_ms};

/// authorized-peers, in memory: each trusted fingerprint's name and role.
#[derive(Clone, Default)]
pub struct Trust(Arc<Mutex<HashMap<Fingerprint, (String, Role)>>>);

impl Trust {
    /// `dockwire trust add NAME KEY [--admin]`: trusts `identity` as
    /// `name` with `role` (replacing what its key had).
    pub fn add(&self, identity: &Identity, name: &str, role: Role) {
        let mut peers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        peers.insert(identity.fingerprint(), (name.to_owned(), role));
    }

    /// `dockwire trust remove NAME`: every key of that name.
    pub fn remove(&self, name: &str) {
        let mut peers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|_, (n, _)| n != name);
    }

    /// The name and role `fingerprint` is trusted with, if any.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<(String, Role)> {
        let peers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        peers.get(fingerprint).cloned()
    }

    /// Roles as `dockwire serve` decides them: by the call's key, now.
    pub fn roles(&self) -> Roles {
        let trust = self.clone();
        Roles::new(move |key| {
            let fingerprint: Fingerprint = key.strip_prefix("sha256:")?.parse().ok()?;
            trust.get(&fingerprint).map(|(_, role)| role)
        })
    }
}

/// The key the service sees for `identity` (and writes as the owner).
pub fn key_of(identity: &Identity) -> String {
    format!("sha256:{}", identity.fingerprint())
}

/// A test's peers: an identity per name, each trusted with its role.
pub struct QuicPeers {
    identities: HashMap<&'static str, Arc<Identity>>,
    trust: Trust,
}

impl QuicPeers {
    /// A fresh identity for each of `peers`, trusted with its role.
    pub fn new(peers: &[(&'static str, Role)]) -> QuicPeers {
        let trust = Trust::default();
        let mut identities = HashMap::new();
        for (name, role) in peers {
            let identity = Identity::generate("dockwire").expect("an identity");
            trust.add(&identity, name, *role);
            identities.insert(*name, Arc::new(identity));
        }
        QuicPeers { identities, trust }
    }

    /// `name`'s identity.
    pub fn identity(&self, name: &str) -> &Identity {
        self.identities
            .get(name)
            .unwrap_or_else(|| panic!("no peer named {name}"))
    }

    /// `name`'s key, as the service sees it (and writes as the owner).
    pub fn key(&self, name: &str) -> String {
        key_of(self.identity(name))
    }

    /// The trust table the servers of these peers admit keys by.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Serves `service` over QUIC with mutual TLS on the tests' tokio
    /// runtime, to the keys the trust table holds (at each handshake).
    /// Several servers may serve the same peers.
    pub fn serve<S: Service>(&self, service: Arc<S>) -> QuicServed {
        let server = Identity::generate("dockwire").expect("an identity");
        let check: TrustCheck = {
            let trust = self.trust.clone();
            Arc::new(move |f: &Fingerprint| trust.get(f).is_some())
        };
        let names = {
            let trust = self.trust.clone();
            Arc::new(move |f: &Fingerprint| trust.get(f).map(|(n, _)| Arc::from(n.as_str())))
        };
        let standing: Standing = {
            let trust = self.trust.clone();
            Arc::new(move |f: &Fingerprint| {
                trust
                    .get(f)
                    .map(|(_, role)| Arc::from(format!("{role:?}").as_str()))
            })
        };
        let watch = TrustWatch::new(standing);
        let config = mtls_server_config(&server, check, &QuicOptions::default())
            .expect("the server's TLS config");
        let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let endpoint = Rt::Tokio
            .runtime()
            .quic_endpoint(local, Some(config))
            .expect("a QUIC endpoint");
        let addr = endpoint.local_addr().expect("the endpoint's address");
        let spawn = Rt::Tokio.spawner();
        let service: Arc<dyn Service> = service;
        let serve = serve_quic_watched(
            endpoint.clone(),
            service,
            spawn.clone(),
            Limits::default(),
            peer_by_fingerprint(names),
            watch.clone(),
        );
        spawn.spawn(serve.boxed());
        QuicServed {
            identities: self.identities.clone(),
            server: server.fingerprint(),
            addr,
            watch,
            _endpoint: endpoint,
        }
    }
}

/// A service served to a test's peers.
pub struct QuicServed {
    identities: HashMap<&'static str, Arc<Identity>>,
    server: Fingerprint,
    addr: SocketAddr,
    watch: Arc<TrustWatch>,
    _endpoint: quinn::Endpoint,
}

impl QuicServed {
    /// A client of peer `name`, on a connection of its own (made on its
    /// first call).
    pub fn client(&self, name: &str) -> Client {
        let identity = self
            .identities
            .get(name)
            .unwrap_or_else(|| panic!("no peer named {name}"));
        let connect = Lazy(Arc::new(LazyState {
            config: self.client_config(identity),
            addr: self.addr,
            connected: futures::lock::Mutex::new(None),
        }));
        Client::new(Arc::new(connect), Rt::Tokio.spawner(), Limits::default())
    }

    /// A connection of `identity` (any, trusted or not), made now.
    pub async fn connect(&self, identity: &Identity) -> QuicPeer {
        let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let mut endpoint = Rt::Tokio
            .runtime()
            .quic_endpoint(local, None)
            .expect("a QUIC endpoint");
        endpoint.set_default_client_config(self.client_config(identity));
        let connect = QuicConnect::connect(&endpoint, self.addr, "dockwire")
            .await
            .expect("a connection to the server");
        let connection = connect.connection().clone();
        let client = Client::new(Arc::new(connect), Rt::Tokio.spawner(), Limits::default());
        QuicPeer {
            docker: DockerClient::new(client),
            connection,
            endpoint,
        }
    }

    /// The server's periodic check of its open connections against the
    /// trust table, now: how many it closed.
    pub fn recheck(&self) -> usize {
        self.watch.recheck()
    }

    fn client_config(&self, identity: &Identity) -> quinn::ClientConfig {
        let server = self.server;
        let pin = Arc::new(move |fp: &Fingerprint| *fp == server);
        pinned_client_config(identity, pin, &QuicOptions::default())
            .expect("the client's TLS config")
    }
}

/// One peer's connection to a server, made at once.
pub struct QuicPeer {
    /// A Docker client over the connection.
    pub docker: DockerClient,
    /// The connection, to watch it close.
    pub connection: quinn::Connection,
    endpoint: quinn::Endpoint,
}

impl QuicPeer {
    /// Whether the server closed the connection for a change of trust.
    pub fn closed_for_trust(&self) -> bool {
        matches!(
            self.connection.close_reason(),
            Some(quinn::ConnectionError::ApplicationClosed(close)) if close.error_code == TRUST_CHANGED
        )
    }

    /// Waits (a few seconds at most) for the connection's close.
    pub async fn until_closed(&self) {
        for _ in 0..100 {
            if self.connection.close_reason().is_some() {
                return;
            }
            sleep_ms(20).await;
        }
    }

    /// The connection's local address: the remote address the server
    /// sees.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().expect("the endpoint's address")
    }
}

/// A QUIC connection made on the first call.
struct Lazy(Arc<LazyState>);

struct LazyState {
    config: quinn::ClientConfig,
    addr: SocketAddr,
    /// The endpoint is kept with its connection.
    connected: futures::lock::Mutex<Option<(QuicConnect, quinn::Endpoint)>>,
}

impl LazyState {
    async fn connection(&self) -> io::Result<QuicConnect> {
        let mut connected = self.connected.lock().await;
        if let Some((connect, _)) = &*connected {
            return Ok(connect.clone());
        }
        let local: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let mut endpoint = Rt::Tokio.runtime().quic_endpoint(local, None)?;
        endpoint.set_default_client_config(self.config.clone());
        let connect = QuicConnect::connect(&endpoint, self.addr, "dockwire").await?;
        *connected = Some((connect.clone(), endpoint));
        Ok(connect)
    }
}

impl Connect for Lazy {
    fn open(&self) -> BoxFuture<'static, io::Result<(BoxRead, BoxWrite)>> {
        let state = self.0.clone();
        async move { state.connection().await?.open().await }.boxed()
    }

    fn open_call(&self) -> BoxFuture<'static, io::Result<(BoxRead, SendHalf)>> {
        let state = self.0.clone();
        async move { state.connection().await?.open_call().await }.boxed()
    }
}
