//! `network/*`: list, create, connect, disconnect, remove; and the one way
//! a user's network is made ([`create_owned_network`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bollard::models::{
    Network, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters as q;
use dockwire_core::CallError;

use crate::access::{Caller, forbidden};
use crate::catalog::{
    CONFLICT, Done, NETWORK_NOT_FOUND, NetworkConnect, NetworkCreate, NetworkCreated,
    NetworkDisconnect, NetworkList, NetworkRemove,
};
use crate::engine::Engine;
use crate::error::{Subject, engine_error};
use crate::owned::{not_found, user_error, user_network as own_view};
use crate::ownership::{Kind, check_name, engine_name, owned_labels};
use crate::user_network;

/// The only network driver a user may name: the engine's default.
const DEFAULT_DRIVER: &str = "bridge";

/// `network/list`: a user's own networks only.
pub(crate) async fn list(
    engine: Arc<Engine>,
    caller: Caller,
    i: NetworkList,
) -> Result<Vec<Network>, CallError> {
    let docker = engine.docker().await?;
    if !caller.is_admin() {
        let mut networks = engine.own_networks(&docker, &caller, i.filters).await?;
        for network in &mut networks {
            own_view(&caller, network);
        }
        return Ok(networks);
    }
    let options = q::ListNetworksOptions {
        filters: (!i.filters.is_empty()).then_some(i.filters),
    };
    docker
        .list_networks(Some(options))
        .await
        .map_err(|e| engine_error(Subject::Network, e))
}

/// `network/create`: an admin's as asked (sealed as its own); a user's
/// through [`create_owned_network`], with the default driver and no
/// driver options.
pub(crate) async fn create(
    engine: Arc<Engine>,
    caller: Caller,
    i: NetworkCreate,
) -> Result<NetworkCreated, CallError> {
    if !caller.is_admin() {
        if i.driver.as_deref().is_some_and(|d| d != DEFAULT_DRIVER) {
            return Err(forbidden("a network driver needs an admin"));
        }
        if !i.options.is_empty() {
            return Err(forbidden("network driver options need an admin"));
        }
        return create_owned_network(&engine, &caller, &i.name, i.internal, &i.labels).await;
    }
    let docker = engine.docker().await?;
    let mut labels = owned_labels(&caller.owner, &i.labels);
    engine
        .config
        .owner_key
        .seal_labels(Kind::Network, &i.name, &mut labels);
    let request = NetworkCreateRequest {
        name: i.name,
        driver: i.driver,
        internal: Some(i.internal),
        labels: Some(labels),
        options: (!i.options.is_empty()).then(|| i.options.into_iter().collect()),
        ..Default::default()
    };
    let created = docker
        .create_network(request)
        .await
        .map_err(|e| engine_error(Subject::Network, e))?;
    Ok(NetworkCreated { id: created.id })
}

/// Makes the network user `caller` calls `name`: a bridge named in its own
/// names, sealed as its own, `internal` (no outside connectivity) when
/// asked. Every user network is made here.
pub(crate) async fn create_owned_network(
    engine: &Engine,
    caller: &Caller,
    name: &str,
    internal: bool,
    labels: &BTreeMap<String, String>,
) -> Result<NetworkCreated, CallError> {
    check_name("network", name)?;
    if !engine.config.user_network.has_networks() {
        return Err(forbidden("users get no networks on this server"));
    }
    let docker = engine.docker().await?;
    let engine_name = engine_name(&caller.owner, name);
    // The engine (API 1.41) makes a second network of a name already
    // taken unless asked not to, and bollard's request cannot ask.
    let same_name = q::ListNetworksOptions {
        filters: Some(HashMap::from([(
            "name".to_owned(),
            vec![engine_name.clone()],
        )])),
    };
    let existing = docker
        .list_networks(Some(same_name))
        .await
        .map_err(|e| engine_error(Subject::Network, e))?;
    if existing
        .iter()
        .any(|n| n.name.as_deref() == Some(engine_name.as_str()))
    {
        return Err(CallError::new(
            CONFLICT,
            format!("network with name {name} already exists"),
        ));
    }
    // Made isolated and fenced off the host, as every user network.
    let id = user_network::create_isolated_network(
        engine,
        &caller.owner,
        &engine_name,
        internal,
        owned_labels(&caller.owner, labels),
    )
    .await?;
    Ok(NetworkCreated { id })
}

/// `network/connect`: a user's own container to its own network.
pub(crate) async fn connect(
    engine: Arc<Engine>,
    caller: Caller,
    NetworkConnect(i): NetworkConnect,
) -> Result<Done, CallError> {
    let (docker, network) = engine.network(&caller, &i.network).await?;
    let (_, container) = engine.container(&caller, &i.container).await?;
    if !caller.is_admin() {
        user_network::ready_own(&docker, &network).await?;
    }
    let request = NetworkConnectRequest {
        container,
        ..Default::default()
    };
    docker
        .connect_network(&network, request)
        .await
        .map_err(|e| member_error(&caller, e))?;
    Ok(Done {})
}

/// `network/disconnect`: a user's own container from its own network.
pub(crate) async fn disconnect(
    engine: Arc<Engine>,
    caller: Caller,
    NetworkDisconnect(i): NetworkDisconnect,
) -> Result<Done, CallError> {
    let (docker, network) = engine.network(&caller, &i.network).await?;
    let (_, container) = engine.container(&caller, &i.container).await?;
    let request = NetworkDisconnectRequest {
        container,
        force: Some(i.force),
    };
    docker
        .disconnect_network(&network, request)
        .await
        .map_err(|e| member_error(&caller, e))?;
    Ok(Done {})
}

/// `network/remove`: a user's own networks only.
pub(crate) async fn remove(
    engine: Arc<Engine>,
    caller: Caller,
    i: NetworkRemove,
) -> Result<Done, CallError> {
    let (docker, network) = engine.network(&caller, &i.network).await?;
    // Read first: a user network's bridge has rules to remove with it.
    let inspected = docker
        .inspect_network(&network, None::<q::InspectNetworkOptions>)
        .await
        .ok();
    docker
        .remove_network(&network)
        .await
        .map_err(|e| match engine_error(Subject::Network, e) {
            e if caller.is_admin() => e,
            e if e.code == NETWORK_NOT_FOUND => not_found(Kind::Network, &i.network),
            // The engine's words name the network by its engine name and
            // id, and its endpoints perhaps not the user's.
            e => CallError::new(
                e.code,
                format!("network {} cannot be removed (is it in use?)", i.network),
            ),
        })?;
    if let Some(inspected) = &inspected {
        user_network::after_removal(&docker, inspected).await;
    }
    Ok(Done {})
}

/// A connect or disconnect refused by the engine, whose words name the
/// network by its engine name.
fn member_error(caller: &Caller, e: bollard::errors::Error) -> CallError {
    user_error(caller, engine_error(Subject::Network, e))
}
