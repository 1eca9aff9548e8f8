//! Engine errors as the protocol's typed errors.

use bollard::errors::Error as Engine;
use dockwire_core::{CallError, ErrorCode};

use crate::catalog::{
    CONFLICT, CONTAINER_NOT_FOUND, DOCKER_ERROR, IMAGE_NOT_FOUND, IMAGE_PULL_FAILED,
    NETWORK_NOT_FOUND, VOLUME_NOT_FOUND,
};
use crate::dialect::{docker_message, docker_status};

/// What an operation acts on: decides which `*_NOT_FOUND` a 404 becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Subject {
    Container,
    Image,
    Network,
    Volume,
    /// An image pull: every engine failure is `IMAGE_PULL_FAILED`.
    Pull,
    /// No object (system operations).
    Engine,
}

/// The typed error for an engine failure, keeping the engine's message.
pub(crate) fn engine_error(subject: Subject, e: Engine) -> CallError {
    if is_unreachable(&e) {
        return CallError::new(
            ErrorCode::UNAVAILABLE,
            format!("the Docker engine cannot be reached: {e}"),
        )
        .with_retryable(true);
    }
    if subject == Subject::Pull {
        return CallError::new(IMAGE_PULL_FAILED, message(&e));
    }
    let Engine::DockerResponseServerError {
        status_code,
        message,
    } = &e
    else {
        return CallError::new(DOCKER_ERROR, e.to_string());
    };
    let message = &docker_message(*status_code, message).unwrap_or_else(|| message.clone());
    let code = match docker_status(*status_code, message) {
        400 => ErrorCode::INVALID_INPUT,
        404 => not_found(subject, message),
        409 => CONFLICT,
        _ => DOCKER_ERROR,
    };
    CallError::new(code, message.clone())
}

/// Shorthand for `map_err` on container operations.
pub(crate) fn container(e: Engine) -> CallError {
    engine_error(Subject::Container, e)
}

/// A 404's code: the engine's message names the missing kind of object
/// (`No such image`, `No such container`), which beats the operation's
/// subject (creating a container from a missing image is an image error).
fn not_found(subject: Subject, message: &str) -> ErrorCode {
    let lower = message.to_ascii_lowercase();
    if lower.contains("no such image") {
        return IMAGE_NOT_FOUND;
    }
    if lower.contains("no such container") {
        return CONTAINER_NOT_FOUND;
    }
    match subject {
        Subject::Image | Subject::Pull => IMAGE_NOT_FOUND,
        Subject::Network => NETWORK_NOT_FOUND,
        Subject::Volume => VOLUME_NOT_FOUND,
        Subject::Container | Subject::Engine => CONTAINER_NOT_FOUND,
    }
}

fn message(e: &Engine) -> String {
    match e {
        Engine::DockerResponseServerError { message, .. } => message.clone(),
        Engine::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Failures to reach the engine at all (no socket, refused, reset), as
/// opposed to the engine answering with an error.
pub(crate) fn is_unreachable(e: &Engine) -> bool {
    matches!(
        e,
        Engine::SocketNotFoundError(_)
            | Engine::IOError { .. }
            | Engine::HyperLegacyError { .. }
            | Engine::HyperResponseError { .. }
            | Engine::RequestTimeoutError
    )
}

/// Where on its host the engine keeps what its messages may name: a
/// container's root file system, a volume's data, its sockets.
const HOST_PATHS: &[&str] = &[
    "/var/lib/docker",
    "/var/run/docker",
    "/run/docker",
    "/var/lib/containerd",
    "/run/containerd",
    "/var/run/containerd",
    // Podman's (rootful): its storage, and its runtime state.
    "/var/lib/containers",
    "/run/containers",
    "/var/run/containers",
    "/run/libpod",
    "/var/run/libpod",
];

/// What a host path becomes in a message a user sees.
pub(crate) const HOST_PATH: &str = "<host path>";

/// `e` with every path under the engine's directories on its host
/// replaced by [`HOST_PATH`]: the engine's messages name them (`source
/// /var/lib/docker/overlay2/<id>/merged/bin/sh is not directory`), and
/// where the engine keeps things is no user's business.
pub(crate) fn without_host_paths(mut e: CallError) -> CallError {
    if HOST_PATHS.iter().any(|p| e.message.contains(p)) {
        e.message = scrub(&e.message);
    }
    e
}

fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = HOST_PATHS.iter().filter_map(|p| rest.find(p)).min() {
        out.push_str(&rest[..at]);
        out.push_str(HOST_PATH);
        let path = &rest[at..];
        let end = path
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | ';' | ')'))
            .unwrap_or(path.len());
        // A path's trailing `:` (before an error's cause) stays.
        let end = match path[..end].strip_suffix(':') {
            Some(trimmed) => trimmed.len(),
            None => end,
        };
        rest = &path[end..];
    }
    out.push_str(rest);
    out
}

/// An input that does not fit the operation.
pub(crate) fn invalid_input(message: impl Into<String>) -> CallError {
    CallError::new(ErrorCode::INVALID_INPUT, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status_code: u16, message: &str) -> Engine {
        Engine::DockerResponseServerError {
            status_code,
            message: message.into(),
        }
    }

    #[test]
    fn a_404_names_the_missing_object_never_the_operation() {
        let e = engine_error(Subject::Container, server(404, "No such container: x"));
        assert_eq!(e.code, CONTAINER_NOT_FOUND);
        assert_eq!(e.message, "No such container: x");
        let e = engine_error(Subject::Container, server(404, "No such image: busybox:1"));
        assert_eq!(e.code, IMAGE_NOT_FOUND);
        let e = engine_error(Subject::Network, server(404, "network n not found"));
        assert_eq!(e.code, NETWORK_NOT_FOUND);
        let e = engine_error(Subject::Volume, server(404, "get v: no such volume"));
        assert_eq!(e.code, VOLUME_NOT_FOUND);
    }

    #[test]
    fn conflicts_bad_input_and_the_rest_keep_the_engine_message() {
        let e = engine_error(Subject::Container, server(409, "name in use"));
        assert_eq!((e.code, e.message.as_str()), (CONFLICT, "name in use"));
        let e = engine_error(Subject::Container, server(400, "bad mount"));
        assert_eq!(e.code, ErrorCode::INVALID_INPUT);
        let e = engine_error(Subject::Engine, server(500, "boom"));
        assert_eq!((e.code, e.message.as_str()), (DOCKER_ERROR, "boom"));
        assert!(!e.retryable);
    }

    #[test]
    fn an_unreachable_engine_is_unavailable_and_retryable() {
        let e = engine_error(
            Subject::Container,
            Engine::SocketNotFoundError("/nowhere".into()),
        );
        assert_eq!(e.code, ErrorCode::UNAVAILABLE);
        assert!(e.retryable);
    }

    #[test]
    fn host_paths_in_messages_are_replaced_and_the_rest_kept() {
        let e = CallError::new(
            DOCKER_ERROR,
            "source /var/lib/docker/overlay2/01e3/merged/bin/busybox is not directory",
        );
        assert_eq!(
            without_host_paths(e).message,
            "source <host path> is not directory"
        );
        let e = CallError::new(
            DOCKER_ERROR,
            "error mounting \"/var/lib/docker/volumes/v/_data\" to rootfs at \"/bin/sh\": x; /run/containerd/a: y",
        );
        assert_eq!(
            without_host_paths(e).message,
            "error mounting \"<host path>\" to rootfs at \"/bin/sh\": x; <host path>: y"
        );
        let e = CallError::new(DOCKER_ERROR, "no such file /etc/passwd");
        assert_eq!(without_host_paths(e).message, "no such file /etc/passwd");
    }

    #[test]
    fn podmans_host_paths_in_messages_are_replaced_too() {
        let e = CallError::new(
            DOCKER_ERROR,
            "crun: open `/var/lib/containers/storage/overlay/9c1d/merged/x`: no such file; \
             /run/libpod/exits/9c1d: gone",
        );
        assert_eq!(
            without_host_paths(e).message,
            "crun: open `<host path>`: no such file; <host path>: gone"
        );
    }

    #[test]
    fn a_name_in_use_is_a_conflict_when_podman_says_500() {
        let e = engine_error(
            Subject::Container,
            server(
                500,
                "container create: the container name \"w\" is already in use by 1f2e",
            ),
        );
        assert_eq!(e.code, CONFLICT);
    }

    #[test]
    fn every_pull_failure_is_image_pull_failed() {
        let e = engine_error(Subject::Pull, server(404, "manifest unknown"));
        assert_eq!(e.code, IMAGE_PULL_FAILED);
        let e = engine_error(
            Subject::Pull,
            Engine::DockerStreamError {
                error: "not found".into(),
            },
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (IMAGE_PULL_FAILED, "not found")
        );
    }
}
