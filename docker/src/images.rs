//! `image/*`: list, inspect, pull, remove.

use std::sync::Arc;

use bollard::Docker;
use bollard::models::{ImageDeleteResponseItem, ImageInspect as ImageDetails, ImageSummary};
use bollard::query_parameters as q;
use dockwire_core::CallError;
use futures::{Stream, TryStreamExt};

use crate::access::Caller;
use crate::catalog::{
    IMAGE_PULL_FAILED, ImageInspect, ImageList, ImagePull, ImageRemove, PullProgress,
};
use crate::engine::Engine;
use crate::error::{Subject, engine_error};

/// `image/list`.
pub(crate) async fn list(
    engine: Arc<Engine>,
    _: Caller,
    i: ImageList,
) -> Result<Vec<ImageSummary>, CallError> {
    let docker = engine.docker().await?;
    let options = q::ListImagesOptions {
        all: i.all,
        filters: (!i.filters.is_empty()).then_some(i.filters),
        ..Default::default()
    };
    docker
        .list_images(Some(options))
        .await
        .map_err(|e| engine_error(Subject::Image, e))
}

/// `image/inspect`.
pub(crate) async fn inspect(
    engine: Arc<Engine>,
    _: Caller,
    ImageInspect(i): ImageInspect,
) -> Result<ImageDetails, CallError> {
    let docker = engine.docker().await?;
    docker
        .inspect_image(&i.image)
        .await
        .map_err(|e| engine_error(Subject::Image, e))
}

/// `image/pull`.
pub(crate) fn pull(
    engine: Arc<Engine>,
    _: Caller,
    i: ImagePull,
) -> impl Stream<Item = Result<PullProgress, CallError>> + Send + 'static {
    engine.stream(move |docker| progress(&docker, i))
}

/// `image/remove`.
pub(crate) async fn remove(
    engine: Arc<Engine>,
    _: Caller,
    i: ImageRemove,
) -> Result<Vec<ImageDeleteResponseItem>, CallError> {
    let docker = engine.docker().await?;
    let options = q::RemoveImageOptions {
        force: i.force,
        ..Default::default()
    };
    docker
        .remove_image(&i.image, Some(options), None)
        .await
        .map_err(|e| engine_error(Subject::Image, e))
}

/// `image/pull`: progress until done; an error item from the engine ends
/// the call with `IMAGE_PULL_FAILED`.
fn progress(
    docker: &Docker,
    i: ImagePull,
) -> impl Stream<Item = Result<PullProgress, CallError>> + use<> {
    let (from_image, tag) = split_tag(&i.image);
    let options = q::CreateImageOptions {
        from_image: Some(from_image),
        tag,
        ..Default::default()
    };
    docker
        .create_image(Some(options), None, None)
        .map_err(|e| engine_error(Subject::Pull, e))
        .and_then(|info| async move {
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "the pull failed".into());
                return Err(CallError::new(IMAGE_PULL_FAILED, message));
            }
            let progress = info.progress_detail.unwrap_or_default();
            Ok(PullProgress {
                id: info.id,
                status: info.status.unwrap_or_default(),
                current: progress.current,
                total: progress.total,
            })
        })
}

/// `repo:tag` → (`repo`, `tag`); a registry's port is not a tag, and a
/// digest reference is passed whole.
fn split_tag(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_owned(), None);
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => {
            let at = name_start + colon;
            (image[..at].to_owned(), Some(image[at + 1..].to_owned()))
        }
        None => (image.to_owned(), Some("latest".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_split_but_a_registry_port_is_not() {
        assert_eq!(
            split_tag("busybox"),
            ("busybox".into(), Some("latest".into()))
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/dockwire/testbox:v1"),
            ("127.0.0.1:5000/dockwire/testbox".into(), Some("v1".into()))
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/testbox"),
            ("127.0.0.1:5000/testbox".into(), Some("latest".into()))
        );
        assert_eq!(split_tag("x@sha256:ab"), ("x@sha256:ab".into(), None));
    }
}
