//! `image/*`: list, inspect, pull, remove.

use std::sync::Arc;

use bollard::Docker;
use bollard::models::{ImageDeleteResponseItem, ImageInspect as ImageDetails, ImageSummary};
use bollard::query_parameters as q;
use dockwire_core::CallError;
use futures::{Stream, TryStreamExt};

use crate::access::Caller;
use crate::catalog::{
    IMAGE_PULL_FAILED, ImageInspect, ImageList, ImagePull, ImageRemove, PullProgress, split_tag,
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
    let (from_image, tag) = pull_reference(&i.image);
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

/// What a pull asks the engine for: the repository and the tag, `latest`
/// when none is given; a digest reference is passed whole, with no tag.
fn pull_reference(image: &str) -> (String, Option<String>) {
    let (repository, tag) = split_tag(image);
    let tag = match (image.contains('@'), tag) {
        (true, _) => None,
        (false, tag) => Some(tag.unwrap_or("latest").to_owned()),
    };
    (repository.to_owned(), tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_split_but_a_registry_port_is_not() {
        assert_eq!(
            pull_reference("busybox"),
            ("busybox".into(), Some("latest".into()))
        );
        assert_eq!(
            pull_reference("127.0.0.1:5000/dockwire/testbox:v1"),
            ("127.0.0.1:5000/dockwire/testbox".into(), Some("v1".into()))
        );
        assert_eq!(
            pull_reference("127.0.0.1:5000/testbox"),
            ("127.0.0.1:5000/testbox".into(), Some("latest".into()))
        );
        assert_eq!(pull_reference("x@sha256:ab"), ("x@sha256:ab".into(), None));
    }
}
