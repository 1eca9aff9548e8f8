//! `network/*`: list, create, connect, disconnect, remove.

use std::sync::Arc;

use bollard::models::{
    Network, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters as q;
use dockwire_core::CallError;

use crate::access::Caller;
use crate::catalog::{
    Done, NetworkConnect, NetworkCreate, NetworkCreated, NetworkDisconnect, NetworkList,
    NetworkRemove,
};
use crate::engine::Engine;
use crate::error::{Subject, engine_error};
use crate::user_network;

/// `network/list`.
pub(crate) async fn list(
    engine: Arc<Engine>,
    _: Caller,
    i: NetworkList,
) -> Result<Vec<Network>, CallError> {
    let docker = engine.docker().await?;
    let options = q::ListNetworksOptions {
        filters: (!i.filters.is_empty()).then_some(i.filters),
    };
    docker
        .list_networks(Some(options))
        .await
        .map_err(|e| engine_error(Subject::Network, e))
}

/// `network/create`.
pub(crate) async fn create(
    engine: Arc<Engine>,
    _: Caller,
    i: NetworkCreate,
) -> Result<NetworkCreated, CallError> {
    let docker = engine.docker().await?;
    let request = NetworkCreateRequest {
        name: i.name,
        driver: i.driver,
        internal: Some(i.internal),
        labels: Some(i.labels.into_iter().collect()),
        ..Default::default()
    };
    let created = docker
        .create_network(request)
        .await
        .map_err(|e| engine_error(Subject::Network, e))?;
    Ok(NetworkCreated { id: created.id })
}

/// `network/connect`.
pub(crate) async fn connect(
    engine: Arc<Engine>,
    _: Caller,
    NetworkConnect(i): NetworkConnect,
) -> Result<Done, CallError> {
    let docker = engine.docker().await?;
    let request = NetworkConnectRequest {
        container: i.container,
        ..Default::default()
    };
    docker
        .connect_network(&i.network, request)
        .await
        .map_err(|e| engine_error(Subject::Network, e))?;
    Ok(Done {})
}

/// `network/disconnect`.
pub(crate) async fn disconnect(
    engine: Arc<Engine>,
    _: Caller,
    NetworkDisconnect(i): NetworkDisconnect,
) -> Result<Done, CallError> {
    let docker = engine.docker().await?;
    let request = NetworkDisconnectRequest {
        container: i.container,
        force: Some(i.force),
    };
    docker
        .disconnect_network(&i.network, request)
        .await
        .map_err(|e| engine_error(Subject::Network, e))?;
    Ok(Done {})
}

/// `network/remove`.
pub(crate) async fn remove(
    engine: Arc<Engine>,
    _: Caller,
    i: NetworkRemove,
) -> Result<Done, CallError> {
    let docker = engine.docker().await?;
    // Read first: a user network's bridge has rules to remove with it.
    let network = docker
        .inspect_network(&i.network, None::<q::InspectNetworkOptions>)
        .await
        .map_err(|e| engine_error(Subject::Network, e))?;
    let id = network.id.clone().unwrap_or_else(|| i.network.clone());
    docker
        .remove_network(&id)
        .await
        .map_err(|e| engine_error(Subject::Network, e))?;
    user_network::after_removal(&docker, &network).await;
    Ok(Done {})
}
