//! `system/*`: the engine's ping, version and events.

use std::sync::Arc;

use bollard::models::{EventMessage, SystemVersion};
use bollard::query_parameters as q;
use dockwire_core::CallError;
use futures::{Stream, TryStreamExt, future};

use crate::access::Caller;
use crate::catalog::{Events, Ping, Pong, Version};
use crate::engine::Engine;
use crate::error::{Subject, engine_error};

/// `system/ping`: the engine answers, with the API version negotiated.
pub(crate) async fn ping(engine: Arc<Engine>, _: Caller, _: Ping) -> Result<Pong, CallError> {
    let docker = engine.docker().await?;
    docker
        .ping()
        .await
        .map_err(|e| engine_error(Subject::Engine, e))?;
    Ok(Pong {
        api_version: docker.client_version().to_string(),
    })
}

/// `system/version`.
pub(crate) async fn version(
    engine: Arc<Engine>,
    _: Caller,
    _: Version,
) -> Result<SystemVersion, CallError> {
    let docker = engine.docker().await?;
    docker
        .version()
        .await
        .map_err(|e| engine_error(Subject::Engine, e))
}

/// `system/events`: a user's are those of its own containers only, with
/// its own names.
pub(crate) fn events(
    engine: Arc<Engine>,
    caller: Caller,
    mut i: Events,
) -> impl Stream<Item = Result<EventMessage, CallError>> + Send + 'static {
    if !caller.is_admin() {
        caller.own_objects(&mut i.filters);
        i.filters.insert("type".into(), vec!["container".into()]);
    }
    let own = engine.clone();
    engine.stream(move |docker| {
        let options = q::EventsOptions {
            since: i.since,
            until: i.until,
            filters: (!i.filters.is_empty()).then_some(i.filters),
        };
        // The label filter is a first cut; the seal decides.
        docker
            .events(Some(options))
            .map_err(|e| engine_error(Subject::Engine, e))
            .try_filter_map(move |event| future::ready(Ok(own.own_event(&caller, event))))
    })
}
