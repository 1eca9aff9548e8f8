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
use crate::registry;
use crate::reply::one_then_many;

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

/// `image/pull`: a user's only from the registries it may pull from
/// (see [`crate::registry`]), checked before the engine is asked.
pub(crate) fn pull(
    engine: Arc<Engine>,
    caller: Caller,
    i: ImagePull,
) -> impl Stream<Item = Result<PullProgress, CallError>> + Send + 'static {
    one_then_many(async move {
        registry::check_pull(&engine.config, &caller, &i.image).await?;
        let docker = engine.docker().await?;
        Ok(progress(&docker, i, caller.is_admin()))
    })
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
/// the call with `IMAGE_PULL_FAILED`, with the engine's message when
/// `verbatim` (for admins), else a fixed one: the engine's message can
/// carry what the registry answered, which is no user's business.
fn progress(
    docker: &Docker,
    i: ImagePull,
    verbatim: bool,
) -> impl Stream<Item = Result<PullProgress, CallError>> + use<> {
    let (from_image, tag) = pull_reference(&i.image);
    let options = q::CreateImageOptions {
        from_image: Some(from_image),
        tag,
        ..Default::default()
    };
    let fixed = Arc::new(move |e: CallError, status: String| {
        if verbatim || e.code != IMAGE_PULL_FAILED {
            return e;
        }
        CallError::new(
            IMAGE_PULL_FAILED,
            format!("pulling {:?} failed ({status})", i.image),
        )
    });
    let on_item = fixed.clone();
    docker
        .create_image(Some(options), None, None)
        .map_err(move |e| {
            let status = match &e {
                bollard::errors::Error::DockerResponseServerError { status_code, .. } => {
                    format!("the engine answered {status_code}")
                }
                _ => "the engine reported an error".to_owned(),
            };
            fixed(engine_error(Subject::Pull, e), status)
        })
        .and_then(move |info| {
            let fixed = on_item.clone();
            async move {
                if let Some(detail) = info.error_detail {
                    let message = detail.message.unwrap_or_else(|| "the pull failed".into());
                    let status = match detail.code {
                        Some(code) => format!("error {code}"),
                        None => "the registry or the engine refused it".to_owned(),
                    };
                    return Err(fixed(CallError::new(IMAGE_PULL_FAILED, message), status));
                }
                let progress = info.progress_detail.unwrap_or_default();
                Ok(PullProgress {
                    id: info.id,
                    status: info.status.unwrap_or_default(),
                    current: progress.current,
                    total: progress.total,
                })
            }
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
