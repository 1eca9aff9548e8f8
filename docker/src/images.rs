//! `image/*`: list, inspect, pull, remove, tag, push; and
//! `container/commit`, which makes an image.

use std::sync::Arc;

use bollard::Docker;
use bollard::models::{ImageDeleteResponseItem, ImageInspect as ImageDetails, ImageSummary};
use bollard::query_parameters as q;
use dockwire_core::CallError;
use futures::{Stream, TryStreamExt};

use std::collections::HashMap;

use crate::access::{Caller, forbidden};
use crate::catalog::{
    Committed, ContainerCommit, Done, IMAGE_PULL_FAILED, IMAGE_PUSH_FAILED, ImageInspect,
    ImageList, ImagePull, ImagePush, ImageRemove, ImageTag, PullProgress, split_tag,
};
use crate::dialect;
use crate::engine::Engine;
use crate::error::{self, Subject, engine_error};
use crate::image_owner;
use crate::registry;
use crate::reply::one_then_many;

/// `image/list`: a user's, only the images it may see (its own and the
/// shared ones, see [`crate::image_owner`]), with its own names.
pub(crate) async fn list(
    engine: Arc<Engine>,
    caller: Caller,
    i: ImageList,
) -> Result<Vec<ImageSummary>, CallError> {
    let docker = engine.docker().await?;
    let options = q::ListImagesOptions {
        all: i.all,
        filters: (!i.filters.is_empty()).then_some(i.filters),
        ..Default::default()
    };
    let mut images = dialect::list_images(&docker, options)
        .await
        .map_err(|e| engine_error(Subject::Image, e))?;
    let dialect = engine.dialect(&docker).await?;
    for image in &mut images {
        for tag in image.repo_tags.iter_mut().chain(&mut image.repo_digests) {
            *tag = dialect.image_tag(tag);
        }
    }
    let key = &engine.config.owner_key;
    Ok(images
        .into_iter()
        .filter_map(|summary| image_owner::shown_summary(key, &caller, summary))
        .collect())
}

/// `image/inspect`: a user's, of an image it may see, with its own names
/// and none of the engine's storage paths.
pub(crate) async fn inspect(
    engine: Arc<Engine>,
    caller: Caller,
    ImageInspect(i): ImageInspect,
) -> Result<ImageDetails, CallError> {
    let docker = engine.docker().await?;
    let usable = image_owner::resolve(&docker, &engine.config.owner_key, &caller, &i.image).await?;
    let mut image = usable.details;
    let dialect = engine.dialect(&docker).await?;
    let named = image.repo_tags.iter_mut().chain(&mut image.repo_digests);
    for tag in named.flatten() {
        *tag = dialect.image_tag(tag);
    }
    Ok(image_owner::shown_details(&caller, image))
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

/// `image/remove`: a user removes its own images, and its own names of
/// shared ones (the name only); a shared image itself is the operator's.
pub(crate) async fn remove(
    engine: Arc<Engine>,
    caller: Caller,
    i: ImageRemove,
) -> Result<Vec<ImageDeleteResponseItem>, CallError> {
    let docker = engine.docker().await?;
    let reference = match caller.is_admin() {
        true => i.image.clone(),
        false => {
            let usable =
                image_owner::resolve(&docker, &engine.config.owner_key, &caller, &i.image).await?;
            let own_name = image_owner::own_name(&caller.owner, &i.image)
                .is_ok_and(|own| usable.reference.starts_with(&own));
            if !usable.own && !own_name {
                return Err(forbidden(format!(
                    "{} is a shared image: a user removes only its own",
                    i.image
                )));
            }
            usable.reference
        }
    };
    let options = q::RemoveImageOptions {
        force: i.force,
        ..Default::default()
    };
    let mut removed = docker
        .remove_image(&reference, Some(options), None)
        .await
        .map_err(|e| engine_error(Subject::Image, e))
        .map_err(|e| shown_error(&caller, e))?;
    let dialect = engine.dialect(&docker).await?;
    for tag in removed.iter_mut().filter_map(|r| r.untagged.as_mut()) {
        *tag = dialect.image_tag(tag);
    }
    Ok(removed
        .into_iter()
        .map(|mut item| {
            item.untagged = item
                .untagged
                .and_then(|n| image_owner::shown_name(&caller, &n));
            item
        })
        .collect())
}

/// An engine error as `caller` may read it (its namespace left out).
fn shown_error(caller: &Caller, mut e: CallError) -> CallError {
    e.message = image_owner::shown_message(caller, &e.message);
    e
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

/// `container/commit`: a user commits its own containers, into images
/// sealed as its own and named in its namespace.
pub(crate) async fn commit(
    engine: Arc<Engine>,
    caller: Caller,
    mut i: ContainerCommit,
) -> Result<Committed, CallError> {
    let (docker, id) = engine.container(&caller, &i.id).await?;
    let reference = match i.reference.as_deref() {
        Some(reference) => Some(image_owner::engine_name(&caller, reference)?),
        None => None,
    };
    let (repo, tag) = match reference.as_deref() {
        Some(reference) => {
            let (repo, tag) = split_tag(reference);
            (Some(repo.to_owned()), tag.map(str::to_owned))
        }
        None => (None, None),
    };
    if !caller.is_admin() {
        // After the caller's own changes, so that none can override them.
        for (key, value) in image_owner::owner_labels(&engine.config.owner_key, &caller.owner) {
            i.changes.push(format!("LABEL {key}={value:?}"));
        }
    }
    let options = q::CommitContainerOptions {
        container: Some(id),
        repo,
        tag,
        comment: i.message,
        author: i.author,
        pause: i.pause.unwrap_or(true),
        changes: (!i.changes.is_empty()).then(|| i.changes.join("\n")),
    };
    let made = docker
        .commit_container(options, bollard::models::ContainerConfig::default())
        .await
        .map_err(error::container)
        .map_err(|e| shown_error(&caller, e))?;
    // Podman answers the bare hex digits; Docker, and either engine's
    // image inspect, the digest with its algorithm.
    let id = match made.id.contains(':') {
        true => made.id,
        false => format!("sha256:{}", made.id),
    };
    Ok(Committed { id })
}

/// `image/tag`: a user tags an image it may use, with a name in its
/// own namespace.
pub(crate) async fn tag(
    engine: Arc<Engine>,
    caller: Caller,
    i: ImageTag,
) -> Result<Done, CallError> {
    let docker = engine.docker().await?;
    let usable = image_owner::resolve(&docker, &engine.config.owner_key, &caller, &i.image).await?;
    let source = match caller.is_admin() {
        true => i.image.clone(),
        // By id: what was checked is what is tagged.
        false => usable.details.id.clone().unwrap_or_default(),
    };
    let reference = image_owner::engine_name(&caller, &i.reference)?;
    let (repo, tag) = split_tag(&reference);
    let options = q::TagImageOptions {
        repo: Some(repo.to_owned()),
        tag: Some(tag.unwrap_or("latest").to_owned()),
    };
    docker
        .tag_image(&source, Some(options))
        .await
        .map_err(|e| engine_error(Subject::Image, e))
        .map_err(|e| shown_error(&caller, e))?;
    Ok(Done {})
}

/// `image/push`: the engine's progress; an error item ends the call with
/// `IMAGE_PUSH_FAILED` and the engine's message. A user pushes only names
/// in its own namespace (so into the registry's namespace of the same
/// name), and only to registries it may pull from.
pub(crate) fn push(
    engine: Arc<Engine>,
    caller: Caller,
    i: ImagePush,
) -> impl Stream<Item = Result<PullProgress, CallError>> + Send + 'static {
    one_then_many(async move {
        let docker = engine.docker().await?;
        let image = match caller.is_admin() {
            true => i.image.clone(),
            false => {
                let own = image_owner::own_name(&caller.owner, &i.image)?;
                let (repo, _) = split_tag(&own);
                // The name must be one of the caller's, on an image it may use.
                let only_repo = q::ListImagesOptions {
                    filters: Some(HashMap::from([(
                        "reference".to_owned(),
                        vec![repo.to_owned()],
                    )])),
                    ..Default::default()
                };
                let found = dialect::list_images(&docker, only_repo)
                    .await
                    .map_err(|e| engine_error(Subject::Image, e))?;
                let key = &engine.config.owner_key;
                let usable = found
                    .into_iter()
                    .any(|s| image_owner::shown_summary(key, &caller, s).is_some());
                if !usable {
                    return Err(image_owner::not_found(&i.image));
                }
                registry::check_pull(&engine.config, &caller, &own).await?;
                own
            }
        };
        let shown = Arc::new(caller);
        let (repo, tag) = split_tag(&image);
        let options = q::PushImageOptions {
            tag: tag.map(str::to_owned),
            platform: None,
        };
        let pushed = docker
            .push_image(repo, Some(options), None)
            .map_err(|e| engine_error(Subject::Image, e))
            .and_then(move |info| {
                let shown = shown.clone();
                async move {
                    if let Some(detail) = info.error_detail {
                        let message = detail.message.unwrap_or_else(|| "the push failed".into());
                        let message = image_owner::shown_message(&shown, &message);
                        return Err(CallError::new(IMAGE_PUSH_FAILED, message));
                    }
                    let progress = info.progress_detail.unwrap_or_default();
                    Ok(PullProgress {
                        id: None,
                        status: info.status.unwrap_or_default(),
                        current: progress.current,
                        total: progress.total,
                    })
                }
            });
        Ok(pushed)
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
