//! `image/build`: an image built by the engine's builder from a context
//! streamed on stdin (a tar, passed on as it comes: never held whole),
//! its output (each step's text, as the engine sends it) streamed on
//! stdout. A failed step ends the call with `BUILD_FAILED` and the
//! engine's message, which names the step's command and exit status.
//!
//! A `user` peer's build (see docker/README.md's "Users' images"):
//!
//! - its tags are names in its own namespace, and the image is sealed as
//!   its own (see [`crate::image_owner`]);
//! - its Dockerfile comes first in the context, and is checked and
//!   rewritten before the builder sees it: every image it names is one
//!   the user may use, named by id, so nothing is pulled (see
//!   [`crate::dockerfile`]); `pull` is refused;
//! - no build cache (a cache hit would tell one user what another built),
//!   intermediate containers always removed;
//! - its `RUN` steps on the user's own network (fenced off the host), or
//!   none, with the user's default memory limit;
//! - its context at most the operator's cap (`--user-build-context-max`)
//!   and the whole build at most its timeout (`--user-build-timeout`).

use std::collections::HashMap;
use std::sync::Arc;

use bollard::Docker;
use bollard::query_parameters as q;
use bytes::Bytes;
use dockwire_core::{CallError, ErrorCode};
use dockwire_service::RawIo;
use std::pin::pin;

use futures::future::{self, Either};
use futures::{Stream, StreamExt, stream};
use serde_json::json;
use tokio::sync::oneshot;

use crate::access::Caller;
use crate::build_context::{capped, first_entry, replaced, too_large};
use crate::catalog::{BUILD_FAILED, ImageBuild, LABEL_PREFIX};
use crate::dockerfile::{self, Dockerfile};
use crate::engine::Engine;
use crate::error::{Subject, engine_error, invalid_input};
use crate::image_owner;
use crate::stdio;
use crate::user_network;

/// `image/build`.
pub(crate) async fn build(
    engine: Arc<Engine>,
    caller: Caller,
    i: ImageBuild,
    io: RawIo,
) -> Result<i32, CallError> {
    let docker = engine.docker().await?;
    if !caller.is_admin() && i.pull {
        return Err(invalid_input(
            "a user's build uses only images already on the engine: pull them first",
        ));
    }
    let tags = i
        .tags
        .iter()
        .map(|t| image_owner::engine_name(&caller, t))
        .collect::<Result<Vec<_>, _>>()?;
    let (input, mut out) = io.split();
    out.accept(json!({})).await?;
    let context = stdio::stdin_until_closed(input);
    let dockerfile = i.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into());
    let mut options = q::BuildImageOptions {
        dockerfile: dockerfile.clone(),
        t: (!tags.is_empty()).then(|| tags.join(",")),
        target: i.target.unwrap_or_default(),
        q: i.quiet,
        nocache: i.no_cache,
        pull: i.pull.then(|| "true".into()),
        rm: true,
        forcerm: true,
        buildargs: (!i.build_args.is_empty())
            .then(|| i.build_args.into_iter().collect::<HashMap<_, _>>()),
        labels: (!i.labels.is_empty()).then(|| i.labels.into_iter().collect::<HashMap<_, _>>()),
        ..Default::default()
    };
    if caller.is_admin() {
        let built = docker.build_image(options, None, Some(bollard::body_stream(context)));
        return relay(built, &caller, &mut out).await;
    }

    // A user's: the limits run from here, the Dockerfile included.
    let limits = engine.config.policy.user_build;
    let (over_tx, over_rx) = oneshot::channel();
    let checked = async {
        let context = check_context(&engine, &docker, &caller, Box::pin(context), &dockerfile);
        let body = capped(Box::pin(context.await?), limits.context_max, over_tx);
        user_options(&engine, &caller, &mut options).await?;
        let built = docker.build_image(options, None, Some(bollard::body_stream(body)));
        relay(built, &caller, &mut out).await
    };
    let over = async {
        match over_rx.await {
            Ok(()) => Err(too_large(limits.context_max)),
            // The context ended within the cap: the build decides.
            Err(_) => future::pending().await,
        }
    };
    let (checked, over) = (pin!(checked), pin!(over));
    let first = future::select(checked, over);
    match tokio::time::timeout(limits.timeout, first).await {
        Ok(Either::Left((done, _)) | Either::Right((done, _))) => done,
        Err(_) => Err(CallError::new(
            ErrorCode::TIMEOUT,
            format!(
                "the build ran longer than this server allows a user ({:?}, serve --user-build-timeout)",
                limits.timeout
            ),
        )),
    }
}

/// A user's context with its Dockerfile checked and naming by id each
/// image it uses (see [`crate::dockerfile`]).
async fn check_context(
    engine: &Engine,
    docker: &Docker,
    caller: &Caller,
    mut context: impl Stream<Item = Bytes> + Send + Unpin + 'static,
    dockerfile: &str,
) -> Result<impl Stream<Item = Bytes> + Send + Unpin + 'static, CallError> {
    let first = first_entry(&mut context, dockerfile).await?;
    let text = std::str::from_utf8(&first.content)
        .map_err(|_| invalid_input("the Dockerfile is not UTF-8 text"))?;
    let parsed = Dockerfile::parse(text);
    let run_allowed = engine.config.user_runtime.is_none();
    let used = parsed.images(run_allowed)?;
    let mut ids = Vec::with_capacity(used.len());
    for image in &used {
        let usable =
            image_owner::resolve(docker, &engine.config.owner_key, caller, &image.reference)
                .await?;
        // Its ONBUILD triggers run in this build: checked as its lines.
        let triggers = usable
            .details
            .config
            .as_ref()
            .and_then(|c| c.on_build.as_ref());
        for trigger in triggers.into_iter().flatten() {
            let line = format!("ONBUILD {trigger}");
            for instruction in Dockerfile::parse(&line).instructions {
                dockerfile::check(&instruction, run_allowed)?;
            }
        }
        ids.push(usable.details.id.unwrap_or_default());
    }
    let head = replaced(&first, parsed.with_images(&used, &ids).as_bytes());
    Ok(stream::iter([head, first.after]).chain(context))
}

/// What the server sets on a user's build, over what it asked.
async fn user_options(
    engine: &Engine,
    caller: &Caller,
    options: &mut q::BuildImageOptions,
) -> Result<(), CallError> {
    options.nocache = true;
    options.pull = None;
    options.forcerm = true;
    let mut labels: HashMap<String, String> = options
        .labels
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !k.starts_with(LABEL_PREFIX))
        .collect();
    labels.extend(image_owner::owner_labels(
        &engine.config.owner_key,
        &caller.owner,
    ));
    options.labels = Some(labels);
    options.networkmode = Some(match engine.config.user_network.has_networks() {
        true => {
            let name = user_network::default_name(&caller.owner);
            user_network::ready(engine, caller, Some(&name)).await?;
            name
        }
        false => "none".into(),
    });
    let memory = engine.config.policy.user.defaults.memory;
    options.memory = memory.map(|m| i32::try_from(m).unwrap_or(i32::MAX));
    Ok(())
}

/// Passes the build's output to the caller until its end: its text on
/// stdout, its error as `BUILD_FAILED` (in the user's own names).
async fn relay(
    mut built: impl Stream<Item = Result<bollard::models::BuildInfo, bollard::errors::Error>> + Unpin,
    caller: &Caller,
    out: &mut dockwire_service::RawOutput,
) -> Result<i32, CallError> {
    while let Some(item) = built.next().await {
        let info = match item {
            Ok(info) => info,
            // Podman ends its error with a newline; Docker does not.
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                let message = image_owner::shown_message(caller, error.trim_end());
                return Err(CallError::new(BUILD_FAILED, message));
            }
            Err(e) => return Err(engine_error(Subject::Image, e)),
        };
        if let Some(detail) = info.error_detail {
            let message = detail.message.unwrap_or_else(|| "the build failed".into());
            let message = image_owner::shown_message(caller, message.trim_end());
            return Err(CallError::new(BUILD_FAILED, message));
        }
        if let Some(text) = info.stream.filter(|t| !t.is_empty()) {
            let text = image_owner::shown_message(caller, &text);
            out.stdout(text.into_bytes().into()).await?;
        }
    }
    Ok(0)
}
