//! `container/*` on the json carriage: list, inspect, create, start,
//! update, stop, restart, kill, remove, wait, top, stats and logs.

use std::sync::Arc;

use bollard::models::{
    ContainerInspectResponse, ContainerStatsResponse, ContainerSummary, ContainerTopResponse,
    ContainerUpdateBody,
};
use bollard::query_parameters as q;
use dockwire_core::CallError;
use futures::{Stream, TryStreamExt};

use crate::access::Caller;
use crate::audit;
use crate::catalog::*;
use crate::create;
use crate::dialect;
use crate::engine::{Engine, wait_exit};
use crate::error;
use crate::gvisor;
use crate::hardening;
use crate::log_lines::log_lines;
use crate::owned::{own_name_pattern, shown, user_summary};
use crate::policy;
use crate::reply::one_then_many;
use crate::runtime;
use crate::sandbox::restart_policy;

/// `container/list`: a user's own containers only, with its own names.
pub(crate) async fn list(
    engine: Arc<Engine>,
    caller: Caller,
    mut i: ContainerList,
) -> Result<Vec<ContainerSummary>, CallError> {
    let docker = engine.docker().await?;
    if caller.is_admin() {
        let options = q::ListContainersOptions {
            all: i.all,
            filters: (!i.filters.is_empty()).then_some(i.filters),
            ..Default::default()
        };
        return dialect::list_containers(&docker, Some(options))
            .await
            .map_err(error::container);
    }
    // These filters name a container: a user's resolve among its own, or
    // the engine's answer would tell whether another peer's exists.
    for key in ["before", "since"] {
        if let Some(values) = i.filters.get_mut(key) {
            for value in values.iter_mut() {
                *value = engine.container(&caller, value).await?.1;
            }
        }
    }
    // The engine matches its own names: an anchored pattern of the user's
    // names is anchored after the user's prefix.
    if let Some(values) = i.filters.get_mut("name") {
        for value in values.iter_mut() {
            *value = own_name_pattern(&caller, value);
        }
    }
    let mut listed = engine
        .own_containers(&docker, &caller, i.all, i.filters)
        .await?;
    for summary in &mut listed {
        user_summary(&caller, summary);
    }
    Ok(listed)
}

/// `container/inspect`.
pub(crate) async fn inspect(
    engine: Arc<Engine>,
    caller: Caller,
    ContainerInspect(i): ContainerInspect,
) -> Result<ContainerInspectResponse, CallError> {
    let mut info = engine.inspect_owned(&caller, &i.id).await?.1;
    engine.lifetimes.show(&caller, &mut info);
    Ok(info)
}

/// `container/create`.
pub(crate) async fn create(
    engine: Arc<Engine>,
    caller: Caller,
    ContainerCreate(spec): ContainerCreate,
) -> Result<Created, CallError> {
    let docker = engine.docker().await?;
    let prepared = create::prepare(&engine, &docker, &caller, &spec, spec.auto_remove).await?;
    let options = q::CreateContainerOptions {
        name: Some(prepared.name),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(options), prepared.body)
        .await
        .map_err(|e| create::create_error(&caller, error::container(e)))?;
    audit::created(&caller, &created.id, &spec);
    // Its idle timeout counts from now: the enforcer learns of it.
    engine.lifetimes.changed();
    Ok(Created {
        id: created.id,
        warnings: created.warnings,
    })
}

/// `container/start`.
pub(crate) async fn start(
    engine: Arc<Engine>,
    caller: Caller,
    ContainerStart(i): ContainerStart,
) -> Result<Done, CallError> {
    let (docker, id) = engine.container(&caller, &i.id).await?;
    let started = not_modified_is_done(docker.start_container(&id, None).await);
    // Its ttl counts from its first start: the enforcer learns of it.
    engine.lifetimes.changed();
    started
}

/// `container/update`: limits checked against the caller's caps before
/// the container is looked up.
pub(crate) async fn update(
    engine: Arc<Engine>,
    caller: Caller,
    i: ContainerUpdate,
) -> Result<Done, CallError> {
    let limits = policy::asked_update(&i)?;
    let restart = i.restart.as_deref().map(restart_policy).transpose()?;
    if limits == policy::Limits::default() && restart.is_none() {
        return Err(error::invalid_input(
            "an update needs memory, memorySwap, cpus, pidsLimit or restart",
        ));
    }
    engine.config.policy.check(caller.role, &limits)?;
    let (docker, id) = engine.container(&caller, &i.id).await?;
    engine.dialect(&docker).await?.refuse_update()?;
    let body = ContainerUpdateBody {
        memory: limits.memory,
        memory_swap: limits.memory_swap,
        nano_cpus: limits.nano_cpus,
        pids_limit: limits.pids_limit,
        restart_policy: restart,
        ..Default::default()
    };
    docker
        .update_container(&id, body)
        .await
        .map_err(error::container)?;
    Ok(Done {})
}

/// `container/stop`.
pub(crate) async fn stop(
    engine: Arc<Engine>,
    caller: Caller,
    i: ContainerStop,
) -> Result<Done, CallError> {
    let (docker, id) = engine.container(&caller, &i.id).await?;
    let options = q::StopContainerOptions {
        t: i.timeout,
        signal: None,
    };
    not_modified_is_done(docker.stop_container(&id, Some(options)).await)
}

/// `container/restart`.
pub(crate) async fn restart(
    engine: Arc<Engine>,
    caller: Caller,
    ContainerRestart(i): ContainerRestart,
) -> Result<Done, CallError> {
    let (docker, id) = engine.container(&caller, &i.id).await?;
    let options = q::RestartContainerOptions {
        t: i.timeout,
        signal: None,
    };
    not_modified_is_done(docker.restart_container(&id, Some(options)).await)
}

/// `container/kill`.
pub(crate) async fn kill(
    engine: Arc<Engine>,
    caller: Caller,
    i: ContainerKill,
) -> Result<Done, CallError> {
    let (docker, id) = engine.container(&caller, &i.id).await?;
    let options = q::KillContainerOptions {
        signal: i.signal.unwrap_or_else(|| "KILL".into()),
    };
    docker
        .kill_container(&id, Some(options))
        .await
        .map_err(error::container)?;
    Ok(Done {})
}

/// `container/remove`.
pub(crate) async fn remove(
    engine: Arc<Engine>,
    caller: Caller,
    i: ContainerRemove,
) -> Result<Done, CallError> {
    let (docker, id) = engine.container(&caller, &i.id).await?;
    let options = q::RemoveContainerOptions {
        force: i.force,
        v: i.volumes,
        link: false,
    };
    docker
        .remove_container(&id, Some(options))
        .await
        .map_err(error::container)?;
    Ok(Done {})
}

/// `container/wait`.
pub(crate) async fn wait(
    engine: Arc<Engine>,
    caller: Caller,
    ContainerWait(i): ContainerWait,
) -> Result<Exited, CallError> {
    let (docker, id) = engine.container(&caller, &i.id).await?;
    let exit_code = wait_exit(&docker, &id).await?;
    Ok(Exited { exit_code })
}

/// `container/top`.
pub(crate) async fn top(
    engine: Arc<Engine>,
    caller: Caller,
    i: ContainerTop,
) -> Result<ContainerTopResponse, CallError> {
    hardening::check_ps_args(&caller, i.ps_args.as_deref())?;
    let (docker, id) = engine.container(&caller, &i.id).await?;
    let ps_args = i.ps_args.unwrap_or_else(|| "-ef".into());
    // The engine would list host processes: see `gvisor`.
    if runtime::runs_gvisor(&docker, &id).await? {
        return gvisor::top(&docker, &id, &ps_args).await;
    }
    let dialect = engine.dialect(&docker).await?;
    let options = q::TopOptions {
        ps_args: ps_args.clone(),
    };
    let mut listed = docker
        .top_processes(&id, Some(options))
        .await
        .map_err(|e| dialect.top_error(e, &ps_args))?;
    dialect.top(&mut listed);
    Ok(listed)
}

/// `container/stats`: a user's show its own name.
pub(crate) fn stats(
    engine: Arc<Engine>,
    caller: Caller,
    i: ContainerStats,
) -> impl Stream<Item = Result<ContainerStatsResponse, CallError>> + Send + 'static {
    one_then_many(async move {
        let (docker, id) = engine.container(&caller, &i.id).await?;
        let dialect = engine.dialect(&docker).await?;
        let options = q::StatsOptions {
            stream: i.stream,
            one_shot: false,
        };
        Ok(docker
            .stats(&id, Some(options))
            .map_err(error::container)
            .map_ok(move |stats| {
                let mut stats = dialect.stats(stats, &id);
                if let Some(name) = &stats.name {
                    stats.name = Some(shown(&caller, name));
                }
                stats
            }))
    })
}

/// `container/logs`: one item per line (see `log_lines`).
pub(crate) fn logs(
    engine: Arc<Engine>,
    caller: Caller,
    i: ContainerLogs,
) -> impl Stream<Item = Result<LogItem, CallError>> + Send + 'static {
    one_then_many(async move {
        let (docker, id) = engine.container(&caller, &i.id).await?;
        let dialect = engine.dialect(&docker).await?;
        Ok(log_lines(docker, ContainerLogs { id, ..i }, dialect))
    })
}

/// Start and stop of a container already in that state answer 304: done.
fn not_modified_is_done(result: Result<(), bollard::errors::Error>) -> Result<Done, CallError> {
    match result {
        Ok(()) => Ok(Done {}),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(Done {}),
        Err(e) => Err(error::container(e)),
    }
}
