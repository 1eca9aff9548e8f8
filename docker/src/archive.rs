//! `container/archive-get` and `container/archive-put`: a path of a
//! container as a tar, out on stdout or in from stdin.

use std::sync::Arc;

use bollard::Docker;
use bollard::query_parameters as q;
use dockwire_core::CallError;
use dockwire_service::RawIo;
use futures::StreamExt;
use serde_json::json;

use crate::access::Caller;
use crate::catalog::{ArchiveGet, ArchivePut, PathStat};
use crate::engine::Engine;
use crate::error::{self, invalid_input};
use crate::gvisor;
use crate::stdio;

/// Go's `os.ModeDir`, as the engine reports a path's mode.
const GO_MODE_DIR: u32 = 1 << 31;

/// What is at `path` in container `id`.
async fn path_stat(docker: &Docker, id: &str, path: &str) -> Result<PathStat, CallError> {
    let options = q::ContainerArchiveInfoOptions {
        path: path.to_owned(),
    };
    let stat = docker
        .get_container_archive_info(id, Some(options))
        .await
        .map_err(error::container)?;
    Ok(PathStat {
        name: stat.name,
        size: stat.size,
        mode: stat.file_mode,
        mtime: stat.modification_time.unwrap_or_default(),
        link_target: stat.link_target,
    })
}

/// `container/archive-get`: accepted with the path's stat, then the tar
/// as stdout.
pub(crate) async fn get(
    engine: Arc<Engine>,
    caller: Caller,
    mut i: ArchiveGet,
    io: RawIo,
) -> Result<i32, CallError> {
    let (docker, id) = engine.container(&caller, &i.id).await?;
    i.id = id;
    // gVisor's own /tmp: read inside instead, see `gvisor`.
    if gvisor::in_own_tmp(&docker, &i.id, &i.path).await? {
        return gvisor::get(&docker, &i.id, &i.path, io).await;
    }
    let stat = path_stat(&docker, &i.id, &i.path).await?;
    let (_input, mut out) = io.split();
    out.accept(json!(stat)).await?;
    let options = q::DownloadFromContainerOptions { path: i.path };
    let mut tar = docker.download_from_container(&i.id, Some(options));
    while let Some(chunk) = tar.next().await {
        out.stdout(chunk.map_err(error::container)?).await?;
    }
    Ok(0)
}

/// `container/archive-put`: stdin is a tar, unpacked into `path` when
/// stdin closes. A session that ends without closing stdin uploads
/// nothing whole: the request to the engine is dropped unfinished.
pub(crate) async fn put(
    engine: Arc<Engine>,
    caller: Caller,
    mut i: ArchivePut,
    io: RawIo,
) -> Result<i32, CallError> {
    let (docker, id) = engine.container(&caller, &i.id).await?;
    i.id = id;
    // gVisor's own /tmp, or / (which holds it): unpacked inside instead,
    // see `gvisor`.
    if gvisor::unpacks_inside(&docker, &i.id, &i.path).await? {
        return gvisor::put(&docker, &i.id, &i.path, io).await;
    }
    // Check the container and the directory before accepting any bytes.
    let stat = path_stat(&docker, &i.id, &i.path).await?;
    if stat.mode & GO_MODE_DIR == 0 {
        return Err(invalid_input(format!("{} is not a directory", i.path)));
    }
    let (input, mut out) = io.split();
    out.accept(json!({})).await?;
    let tar = stdio::stdin_until_closed(input);
    let options = q::UploadToContainerOptions {
        path: i.path,
        ..Default::default()
    };
    docker
        .upload_to_container(&i.id, Some(options), bollard::body_stream(tar))
        .await
        .map_err(error::container)?;
    Ok(0)
}
