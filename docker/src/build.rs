//! `image/build`: an image built by the engine's builder from a context
//! streamed on stdin (a tar, passed on as it comes: never held whole),
//! its output (each step's text, as the engine sends it) streamed on
//! stdout. A failed step ends the call with `BUILD_FAILED` and the
//! engine's message, which names the step's command and exit status.
//! Admins only: a user's build could read other peers' images through
//! `FROM`, and its images would be everyone's (see docker/README.md).

use std::collections::HashMap;
use std::sync::Arc;

use bollard::query_parameters as q;
use dockwire_core::CallError;
use dockwire_service::RawIo;
use futures::StreamExt;
use serde_json::json;

use crate::access::Caller;
use crate::catalog::{BUILD_FAILED, ImageBuild};
use crate::engine::Engine;
use crate::error::{Subject, engine_error};
use crate::stdio;

/// `image/build`.
pub(crate) async fn build(
    engine: Arc<Engine>,
    _: Caller,
    i: ImageBuild,
    io: RawIo,
) -> Result<i32, CallError> {
    let docker = engine.docker().await?;
    let (input, mut out) = io.split();
    out.accept(json!({})).await?;
    let context = stdio::stdin_until_closed(input);
    let options = q::BuildImageOptions {
        dockerfile: i.dockerfile.unwrap_or_else(|| "Dockerfile".into()),
        t: (!i.tags.is_empty()).then(|| i.tags.join(",")),
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
    let mut built = docker.build_image(options, None, Some(bollard::body_stream(context)));
    while let Some(item) = built.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(CallError::new(BUILD_FAILED, error));
            }
            Err(e) => return Err(engine_error(Subject::Image, e)),
        };
        if let Some(detail) = info.error_detail {
            let message = detail.message.unwrap_or_else(|| "the build failed".into());
            return Err(CallError::new(BUILD_FAILED, message));
        }
        if let Some(text) = info.stream.filter(|t| !t.is_empty()) {
            out.stdout(text.into_bytes().into()).await?;
        }
    }
    Ok(0)
}
