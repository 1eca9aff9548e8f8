//! Where the verbs' calls go: a server at `--host`, or this machine's
//! engine served in-process.

use std::sync::Arc;

use dockwire_core::Limits;
use dockwire_docker::{DockerClient, DockerService};

use crate::Global;
use crate::error::Failure;

/// A client for `global.host`; without one, the engine at `DOCKER_HOST`
/// (or the local socket) served in this process over an in-memory stream.
pub async fn connect(global: &Global) -> Result<DockerClient, Failure> {
    let Some(host) = global.host.as_deref().filter(|h| !h.is_empty()) else {
        let service = Arc::new(DockerService::from_env());
        let client = dockwire_tokio::duplex_client(service, Limits::default());
        return Ok(DockerClient::new(client));
    };
    if let Some(path) = host.strip_prefix("unix://") {
        let connect = dockwire_tokio::unix_connect(path.into());
        return Ok(DockerClient::new(dockwire_tokio::client(
            connect,
            Limits::default(),
        )));
    }
    Err(Failure::local(
        format!("connect to {host}"),
        "a host is quic://HOST:PORT or unix://PATH",
    ))
}
