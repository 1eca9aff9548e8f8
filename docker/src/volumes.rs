//! `volume/*`: list, inspect, create, remove; and the one way a volume is made,
//! sealed for its owner ([`create_owned_volume`]), which a container's
//! create also uses for a user's mount of a new name.

use std::collections::BTreeMap;
use std::sync::Arc;

use bollard::Docker;
use bollard::models::{Volume, VolumeCreateRequest, VolumeListResponse};
use bollard::query_parameters as q;
use dockwire_core::CallError;

use crate::access::{Caller, forbidden};
use crate::catalog::{CONFLICT, Done, VolumeCreate, VolumeInspect, VolumeList, VolumeRemove};
use crate::engine::Engine;
use crate::error::{Subject, engine_error};
use crate::owned::{not_found, user_volume};
use crate::ownership::{Kind, check_name, engine_name, generated_name, owned_labels};

/// The only volume driver a user may name: the engine's default.
const DEFAULT_DRIVER: &str = "local";

/// `volume/list`: a user's own volumes only.
pub(crate) async fn list(
    engine: Arc<Engine>,
    caller: Caller,
    i: VolumeList,
) -> Result<VolumeListResponse, CallError> {
    let docker = engine.docker().await?;
    if !caller.is_admin() {
        let mut volumes = engine.own_volumes(&docker, &caller, i.filters).await?;
        for volume in &mut volumes {
            user_volume(&caller, volume);
        }
        return Ok(VolumeListResponse {
            volumes: Some(volumes),
            warnings: None,
        });
    }
    let options = q::ListVolumesOptions {
        filters: (!i.filters.is_empty()).then_some(i.filters),
    };
    docker
        .list_volumes(Some(options))
        .await
        .map_err(|e| engine_error(Subject::Volume, e))
}

/// `volume/create`: sealed for the caller; a user's named in its own
/// names, with the default driver and no driver options.
pub(crate) async fn create(
    engine: Arc<Engine>,
    caller: Caller,
    i: VolumeCreate,
) -> Result<Volume, CallError> {
    if !caller.is_admin() {
        if i.driver.as_deref().is_some_and(|d| d != DEFAULT_DRIVER) {
            return Err(forbidden("a volume driver needs an admin"));
        }
        if !i.driver_opts.is_empty() {
            return Err(forbidden("volume driver options need an admin"));
        }
    }
    let name = i.name.unwrap_or_else(generated_name);
    let docker = engine.docker().await?;
    let mut volume = create_owned_volume(
        &engine,
        &docker,
        &caller,
        &name,
        i.driver,
        i.driver_opts,
        &i.labels,
    )
    .await?;
    if !caller.is_admin() {
        user_volume(&caller, &mut volume);
    }
    Ok(volume)
}

/// Makes the volume `caller` calls `name` (a user's in its own names), sealed
/// as the caller's. A user's name that is already its own volume gives that
/// volume, as the engine does; one the engine has but the user does not own
/// (made outside dockwire under a user's prefix) is a conflict.
pub(crate) async fn create_owned_volume(
    engine: &Engine,
    docker: &Docker,
    caller: &Caller,
    name: &str,
    driver: Option<String>,
    driver_opts: BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> Result<Volume, CallError> {
    let name = match caller.is_admin() {
        true => name.to_owned(),
        false => {
            check_name("volume", name)?;
            engine_name(&caller.owner, name)
        }
    };
    let key = &engine.config.owner_key;
    let mut labels = owned_labels(&caller.owner, labels);
    key.seal_labels(Kind::Volume, &name, &mut labels);
    let request = VolumeCreateRequest {
        name: Some(name.clone()),
        driver,
        driver_opts: (!driver_opts.is_empty()).then(|| driver_opts.into_iter().collect()),
        labels: Some(labels),
        ..Default::default()
    };
    let volume = docker
        .create_volume(request)
        .await
        .map_err(|e| engine_error(Subject::Volume, e))?;
    // The engine gives an existing volume of that name as it is: it is the
    // caller's only when sealed so.
    if !caller.is_admin() && !caller.owns(key, Kind::Volume, &volume.name, &volume.labels) {
        return Err(CallError::new(
            CONFLICT,
            "that volume name is taken: choose another",
        ));
    }
    Ok(volume)
}

/// `volume/inspect`: a user's own volumes only, with its own name and no
/// host path.
pub(crate) async fn inspect(
    engine: Arc<Engine>,
    caller: Caller,
    i: VolumeInspect,
) -> Result<Volume, CallError> {
    let (docker, name) = engine.volume(&caller, &i.volume).await?;
    let mut volume = docker
        .inspect_volume(&name)
        .await
        .map_err(|e| engine_error(Subject::Volume, e))?;
    if !caller.is_admin() {
        user_volume(&caller, &mut volume);
    }
    Ok(volume)
}

/// `volume/remove`: a user's own volumes only.
pub(crate) async fn remove(
    engine: Arc<Engine>,
    caller: Caller,
    i: VolumeRemove,
) -> Result<Done, CallError> {
    let (docker, name) = engine.volume(&caller, &i.volume).await?;
    let options = q::RemoveVolumeOptions { force: i.force };
    match docker.remove_volume(&name, Some(options)).await {
        Ok(()) => Ok(Done {}),
        Err(e) => Err(match engine_error(Subject::Volume, e) {
            e if caller.is_admin() => e,
            // The engine names the containers that use it: perhaps not
            // the user's.
            e if e.code == CONFLICT => {
                CallError::new(CONFLICT, format!("volume {} is in use", i.volume))
            }
            e if e.code == crate::catalog::VOLUME_NOT_FOUND => not_found(Kind::Volume, &i.volume),
            e => e,
        }),
    }
}
