//! A client of a `dockwire serve` written against the library, for tests
//! that need more calls at once than one CLI process makes: the identity
//! that `dockwire id` made in a client's state directory, the server's
//! fingerprint pinned, one QUIC connection, the typed Docker client on it.
//! Runs on the tokio runtime it is called from.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use dockwire_core::Limits;
use dockwire_docker::DockerClient;
use dockwire_service::Runtime;
use dockwire_service::quic::quinn::{Connection, Endpoint};
use dockwire_service::quic::{
    Fingerprint, Identity, QuicConnect, QuicOptions, TrustCheck, pinned_client_config,
};
use dockwire_tokio::Tokio;

/// One QUIC connection to a server, and the typed client on it.
pub struct Wire {
    /// The typed client; every clone calls over the same connection.
    pub docker: DockerClient,
    endpoint: Endpoint,
    connection: Connection,
}

impl Wire {
    /// Connects to the server on 127.0.0.1:`port` whose fingerprint is
    /// `server`, as the identity in the state directory `state`.
    pub async fn connect(state: &Path, port: u16, server: &str) -> Wire {
        let path = state.join("identity.pem");
        let pem = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let identity = Identity::from_pem(&pem).unwrap();
        let expected = Fingerprint::from_str(server).unwrap();
        let pin: TrustCheck = Arc::new(move |seen: &Fingerprint| *seen == expected);
        let config = pinned_client_config(&identity, pin, &QuicOptions::default()).unwrap();
        let runtime = Tokio::current();
        let mut endpoint = runtime
            .quic_endpoint(([127, 0, 0, 1], 0).into(), None)
            .unwrap();
        endpoint.set_default_client_config(config);
        let connect = QuicConnect::connect(&endpoint, ([127, 0, 0, 1], port).into(), "dockwire")
            .await
            .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
        let connection = connect.connection().clone();
        let docker = DockerClient::new(runtime.client(Arc::new(connect), Limits::default()));
        Wire {
            docker,
            endpoint,
            connection,
        }
    }

    /// Closes the connection and waits (a few seconds at most) until the
    /// server was told, so that it lets go of the connection at once
    /// rather than at its idle timeout.
    pub async fn close(self) {
        self.connection.close(0u32.into(), b"done");
        let _ = tokio::time::timeout(Duration::from_secs(5), self.endpoint.wait_idle()).await;
    }
}
