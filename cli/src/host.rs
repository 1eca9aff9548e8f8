//! Where the verbs' calls go: a server at `--host`, or this machine's
//! engine served in-process.

use std::sync::Arc;

use dockwire_core::Limits;
use dockwire_docker::{DockerClient, DockerService};

use crate::Global;
use crate::error::Failure;

/// The client of a verb, and the service when it runs in this process.
pub struct Connected {
    /// The typed client.
    pub docker: DockerClient,
    /// The in-process service, if there is no server.
    pub embedded: Option<DockerService>,
}

impl Connected {
    /// Lets the in-process service finish cleaning up after cancelled
    /// calls (a failed `run --rm`'s container) before the process exits.
    pub async fn settle(&self) {
        if let Some(service) = &self.embedded {
            if !service.settle(SETTLE).await {
                tracing::warn!("cleanups still running after {SETTLE:?}; exiting anyway");
            }
        }
    }
}

/// How long an exiting process waits for its in-process cleanups.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(15);

/// A client for `global.host`; without one, the engine at `DOCKER_HOST`
/// (or the local socket) served in this process over an in-memory stream.
pub async fn connect(global: &Global) -> Result<Connected, Failure> {
    let Some(host) = global.host.as_deref().filter(|h| !h.is_empty()) else {
        let service = DockerService::from_env();
        let client = dockwire_tokio::duplex_client(Arc::new(service.clone()), Limits::default());
        return Ok(Connected {
            docker: DockerClient::new(client),
            embedded: Some(service),
        });
    };
    if let Some(path) = host.strip_prefix("unix://") {
        let connect = dockwire_tokio::unix_connect(path.into());
        let client = dockwire_tokio::client(connect, Limits::default());
        return Ok(Connected {
            docker: DockerClient::new(client),
            embedded: None,
        });
    }
    Err(Failure::local(
        format!("connect to {host}"),
        "a host is quic://HOST:PORT or unix://PATH",
    ))
}
