//! `volume/*`: list, create, remove.

use std::sync::Arc;

use bollard::models::{Volume, VolumeCreateRequest, VolumeListResponse};
use bollard::query_parameters as q;
use dockwire_core::CallError;

use crate::access::Caller;
use crate::catalog::{Done, VolumeCreate, VolumeList, VolumeRemove};
use crate::engine::Engine;
use crate::error::{Subject, engine_error};

/// `volume/list`.
pub(crate) async fn list(
    engine: Arc<Engine>,
    _: Caller,
    i: VolumeList,
) -> Result<VolumeListResponse, CallError> {
    let docker = engine.docker().await?;
    let options = q::ListVolumesOptions {
        filters: (!i.filters.is_empty()).then_some(i.filters),
    };
    docker
        .list_volumes(Some(options))
        .await
        .map_err(|e| engine_error(Subject::Volume, e))
}

/// `volume/create`.
pub(crate) async fn create(
    engine: Arc<Engine>,
    _: Caller,
    i: VolumeCreate,
) -> Result<Volume, CallError> {
    let docker = engine.docker().await?;
    let request = VolumeCreateRequest {
        name: i.name,
        driver: i.driver,
        labels: Some(i.labels.into_iter().collect()),
        ..Default::default()
    };
    docker
        .create_volume(request)
        .await
        .map_err(|e| engine_error(Subject::Volume, e))
}

/// `volume/remove`.
pub(crate) async fn remove(
    engine: Arc<Engine>,
    _: Caller,
    i: VolumeRemove,
) -> Result<Done, CallError> {
    let docker = engine.docker().await?;
    let options = q::RemoveVolumeOptions { force: i.force };
    docker
        .remove_volume(&i.volume, Some(options))
        .await
        .map_err(|e| engine_error(Subject::Volume, e))?;
    Ok(Done {})
}
