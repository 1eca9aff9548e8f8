//! `system/*`: the engine's ping, version and events.

use std::sync::Arc;

use bollard::models::{EventMessage, SystemVersion};
use bollard::query_parameters as q;
use dockwire_core::CallError;
use futures::{Stream, TryStreamExt};

use crate::access::Caller;
use crate::catalog::{Events, HostResources, Info, Ping, Pong, Resources, Version};
use crate::dialect;
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

/// `system/resources`: the engine's CPUs and memory, the server host's
/// available memory and load, the running containers the caller may see
/// (a user's own), and the server's labels.
pub(crate) async fn resources(
    engine: Arc<Engine>,
    caller: Caller,
    _: Resources,
) -> Result<HostResources, CallError> {
    let docker = engine.docker().await?;
    let info = docker
        .info()
        .await
        .map_err(|e| engine_error(Subject::Engine, e))?;
    let containers_running = match caller.is_admin() {
        true => info.containers_running.unwrap_or_default(),
        false => {
            let own = engine
                .own_containers(&docker, &caller, false, Default::default())
                .await?;
            i64::try_from(own.len()).unwrap_or(i64::MAX)
        }
    };
    let memory_total = info.mem_total.unwrap_or_default();
    let memory_reserved = reserved(&docker).await?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let unreserved = (memory_total > 0).then(|| memory_total.saturating_sub(memory_reserved));
    let memory_available = match (unreserved, mem_available(&meminfo)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(HostResources {
        cpus: info.ncpu.unwrap_or_default(),
        memory_total,
        memory_available,
        memory_reserved,
        containers_running,
        load1: loadavg
            .split_whitespace()
            .next()
            .and_then(|l| l.parse().ok()),
        labels: engine.config.labels.clone(),
    })
}

/// What the engine's running containers' memory limits add up to.
async fn reserved(docker: &bollard::Docker) -> Result<i64, CallError> {
    let running = dialect::list_containers(docker, None)
        .await
        .map_err(|e| engine_error(Subject::Engine, e))?;
    let limits = futures::future::join_all(running.iter().filter_map(|c| c.id.as_deref()).map(
        |id| async move {
            let info = dialect::inspect_container(docker, id).await;
            // One gone in between reserves nothing.
            info.ok()
                .and_then(|i| i.host_config)
                .and_then(|h| h.memory)
                .unwrap_or(0)
        },
    ))
    .await;
    Ok(limits
        .into_iter()
        .fold(0i64, |sum, m| sum.saturating_add(m.max(0))))
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
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

/// `system/info` (admins).
pub(crate) async fn info(
    engine: Arc<Engine>,
    _: Caller,
    _: Info,
) -> Result<bollard::models::SystemInfo, CallError> {
    let docker = engine.docker().await?;
    docker
        .info()
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
    engine.clone().stream(move |docker| {
        let options = q::EventsOptions {
            since: i.since,
            until: i.until,
            filters: (!i.filters.is_empty()).then_some(i.filters),
        };
        // The label filter is a first cut; the seal decides. Events come
        // in Docker's names whatever the engine (its dialect is asked once,
        // then known).
        docker
            .events(Some(options))
            .map_err(|e| engine_error(Subject::Engine, e))
            .try_filter_map(move |event| {
                let (engine, docker, caller) = (engine.clone(), docker.clone(), caller.clone());
                async move {
                    let dialect = engine.dialect(&docker).await?;
                    Ok(dialect
                        .event(event)
                        .and_then(|e| engine.own_event(&caller, e)))
                }
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes() {
        let meminfo =
            "MemTotal:       24684008 kB\nMemFree:  1000 kB\nMemAvailable:   23283836 kB\n";
        assert_eq!(mem_available(meminfo), Some(23283836 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(mem_available("MemAvailable: lots kB\n"), None);
    }
}
