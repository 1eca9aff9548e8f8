//! Peers over real QUIC with mutual TLS, for tests that would otherwise
//! name their peers in memory: each peer has an identity of its own, the
//! server admits exactly those, and each call's key is its peer's
//! fingerprint (`sha256:<hex>`), as `dockwire serve` sees it.
//!
//! ```ignore
//! let peers = QuicPeers::new(&["alice", "root"]);
//! let roles = peers.roles(|name| match name { "root" => Some(Role::Admin), _ => Some(Role::User) });
//! let served = peers.serve(Arc::new(DockerService::new(docker, config.with_roles(roles))));
//! let alice = DockerClient::new(served.client("alice"));
//! ```
//!
//! Clients connect on their first call, so all of this is synchronous
//! (call it where a tokio runtime is current, as [`crate::client_as`]).

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use dockwire_core::Limits;
use dockwire_docker::{Role, Roles};
use dockwire_service::quic::{
    Fingerprint, Identity, QuicConnect, QuicOptions, TrustCheck, mtls_server_config,
    peer_by_fingerprint, pinned_client_config, serve_quic,
};
use dockwire_service::{BoxRead, BoxWrite, Client, Connect, SendHalf, Service};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::Rt;

/// The identities of a test's peers, by name.
pub struct QuicPeers {
    identities: HashMap<&'static str, Identity>,
}

impl QuicPeers {
    /// A fresh identity for each of `names`.
    pub fn new(names: &[&'static str]) -> QuicPeers {
        let identities = names
            .iter()
            .map(|n| (*n, Identity::generate("dockwire").expect("an identity")))
            .collect();
        QuicPeers { identities }
    }

    /// `name`'s key, as the service sees it (and writes as the owner).
    pub fn key(&self, name: &str) -> String {
        format!("sha256:{}", self.identity(name).fingerprint())
    }

    /// Each peer's key has the role `role_of` gives its name; any other
    /// key none.
    pub fn roles(&self, role_of: impl Fn(&str) -> Option<Role> + Send + Sync + 'static) -> Roles {
        let names: HashMap<String, &'static str> =
            self.identities.keys().map(|n| (self.key(n), *n)).collect();
        Roles::new(move |key| names.get(key).and_then(|name| role_of(name)))
    }

    /// Serves `service` over QUIC with mutual TLS on the tests' tokio
    /// runtime, to these peers only.
    pub fn serve<S: Service>(self, service: Arc<S>) -> QuicServed {
        let server = Identity::generate("dockwire").expect("an identity");
        let names: HashMap<Fingerprint, &'static str> = self
            .identities
            .iter()
            .map(|(n, i)| (i.fingerprint(), *n))
            .collect();
        let names = Arc::new(names);
        let check: TrustCheck = {
            let names = names.clone();
            Arc::new(move |f: &Fingerprint| names.contains_key(f))
        };
        let lookup = {
            let names = names.clone();
            Arc::new(move |f: &Fingerprint| names.get(f).map(|n| Arc::from(*n)))
        };
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
        let serve = serve_quic(
            endpoint.clone(),
            service,
            spawn.clone(),
            Limits::default(),
            peer_by_fingerprint(lookup),
        );
        spawn.spawn(serve.boxed());
        QuicServed {
            peers: self,
            server: server.fingerprint(),
            addr,
            _endpoint: endpoint,
        }
    }

    fn identity(&self, name: &str) -> &Identity {
        self.identities
            .get(name)
            .unwrap_or_else(|| panic!("no peer named {name}"))
    }
}

/// A service served to a test's peers.
pub struct QuicServed {
    peers: QuicPeers,
    server: Fingerprint,
    addr: SocketAddr,
    _endpoint: quinn::Endpoint,
}

impl QuicServed {
    /// A client of peer `name`, on a connection of its own (made on its
    /// first call).
    pub fn client(&self, name: &str) -> Client {
        let server = self.server;
        let pin = Arc::new(move |fp: &Fingerprint| *fp == server);
        let config = pinned_client_config(self.peers.identity(name), pin, &QuicOptions::default())
            .expect("the client's TLS config");
        let connect = Lazy(Arc::new(LazyState {
            config,
            addr: self.addr,
            connected: futures::lock::Mutex::new(None),
        }));
        Client::new(Arc::new(connect), Rt::Tokio.spawner(), Limits::default())
    }

    /// `name`'s key, as the service sees it.
    pub fn key(&self, name: &str) -> String {
        self.peers.key(name)
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
