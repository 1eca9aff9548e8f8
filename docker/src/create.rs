//! What a container's create makes and names, for `container/create` and
//! `container/run` alike: its name on the engine (a user's in its own
//! names; a generated one when none is given), the network it joins (a
//! user's own, fenced off the host, or none), the volumes it mounts (a user's own; a new name
//! made as its own first), and the create body.

use bollard::Docker;
use bollard::models::{ContainerCreateBody, MountType};
use dockwire_core::CallError;

use crate::access::Caller;
use crate::catalog::ContainerSpec;
use crate::engine::Engine;
use crate::image_owner;
use crate::owned::user_error;
use crate::ownership::{check_name, engine_name, generated_name};
use crate::runtime;
use crate::spec;
use crate::user_network;
use crate::volumes::create_owned_volume;

/// A container ready to create: its name on the engine and its body.
pub(crate) struct Prepared {
    pub name: String,
    pub body: ContainerCreateBody,
}

/// Prepares `spec`'s container for `caller`. `engine_auto_remove` asks the
/// engine itself to remove it when it exits. Everything the spec asks is
/// checked before anything is made: a refused spec makes no volume and no
/// network.
pub(crate) async fn prepare(
    engine: &Engine,
    docker: &Docker,
    caller: &Caller,
    spec: &ContainerSpec,
    engine_auto_remove: bool,
) -> Result<Prepared, CallError> {
    let given = spec.name.clone().unwrap_or_else(generated_name);
    let name = match caller.is_admin() {
        true => given,
        false => {
            check_name("container", &given)?;
            engine_name(&caller.owner, &given)
        }
    };
    let mut body = spec::create_body(&engine.config, caller, spec, &name, engine_auto_remove)?;
    // An engine that ignores a runtime per container (Podman) refuses one,
    // for admins and users alike: never a container silently unsandboxed.
    // Ulimits and ports as the engine reads them (Podman: see `Dialect`).
    if let Some(host) = body.host_config.as_mut() {
        if host.runtime.is_some() || host.ulimits.is_some() || host.port_bindings.is_some() {
            let dialect = engine.dialect(docker).await?;
            if let Some(runtime) = &host.runtime {
                dialect.refuse_runtime(runtime)?;
            }
            dialect.complete_ulimits(&mut host.ulimits).await;
            dialect.port_bindings(&mut host.port_bindings);
        }
    }
    if caller.is_admin() {
        return Ok(Prepared { name, body });
    }
    // An image the user may use: its own (by the name in its namespace)
    // or a shared one; another user's is, to it, missing.
    let image = image_owner::resolve(docker, &engine.config.owner_key, caller, &spec.image).await?;
    body.image = Some(image.reference);
    let Some(host) = body.host_config.as_mut() else {
        return Ok(Prepared { name, body });
    };
    let mounts = host.mounts.iter_mut().flatten();
    let volumes: Vec<_> = mounts
        .filter(|m| m.typ == Some(MountType::VOLUME))
        .collect();
    for mount in &volumes {
        check_name("volume", mount.source.as_deref().unwrap_or_default())?;
    }
    // The runtime `runtime::chosen` decided, checked on the engine.
    if let Some(chosen) = &host.runtime {
        let forced = engine.config.user_runtime.is_some();
        runtime::check_installed(docker, chosen, forced).await?;
    }
    // A user's network: its own, or none. Host and other containers'
    // namespaces were refused (or allowed) by the spec's check.
    // `user_network::network_mode` made it: the user's default network
    // when the spec names none (made on first need), else its own.
    if let Some(mode) = host.network_mode.clone() {
        let shared = mode == "host" || mode.starts_with("container:");
        if mode == user_network::default_name(&caller.owner) {
            user_network::ready(engine, caller, Some(&mode)).await?;
        } else if mode != "none" && !shared {
            let (_, id) = engine.network(caller, &mode).await?;
            user_network::ready_own(docker, &id).await?;
            host.network_mode = Some(id);
        }
    }
    for mount in volumes {
        let asked = mount.source.clone().unwrap_or_default();
        let volume = create_owned_volume(
            engine,
            docker,
            caller,
            &asked,
            None,
            Default::default(),
            &Default::default(),
        )
        .await?;
        mount.source = Some(volume.name);
    }
    Ok(Prepared { name, body })
}

/// A create refused by the engine, as `caller` may see it (a name
/// conflict names the container by its engine name).
pub(crate) fn create_error(caller: &Caller, e: CallError) -> CallError {
    user_error(caller, e)
}
