//! The engines dockwire serves, and every difference between them that a
//! bollard client sees, in one place: each difference is one method of
//! [`Dialect`], which the handlers call where Docker's answer is what
//! they expect. A third engine behind Docker's API (Apple's `container`,
//! a Kubernetes shim) is one more variant here.
//!
//! The service learns its dialect from the engine (`/version`'s
//! components: Podman names one `Podman Engine`) unless the operator set
//! it ([`Config::with_engine`](crate::Config::with_engine), `serve
//! --engine`). Measured with Podman 4.3 (rootful, its compat API at
//! version 1.41) against Docker 20.10; what cannot be made the same is
//! refused with `NOT_SUPPORTED` saying why, or listed in the crate's
//! README.

use std::fmt;
use std::str::FromStr;

use bollard::models::{ContainerStatsResponse, EventMessage, SystemVersion};
use dockwire_core::CallError;

use crate::catalog::NOT_SUPPORTED;

/// The engine behind Docker's API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// Docker's own engine (dockerd): the reference.
    #[default]
    Docker,
    /// Podman's Docker-compatible API (`podman system service`).
    Podman,
}

/// A name that is not an engine's (`serve --engine`).
#[derive(Debug, thiserror::Error)]
#[error("unknown engine {0:?}: expected docker or podman")]
pub struct UnknownEngine(pub String);

impl FromStr for Dialect {
    type Err = UnknownEngine;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "docker" => Ok(Dialect::Docker),
            "podman" => Ok(Dialect::Podman),
            other => Err(UnknownEngine(other.to_owned())),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Docker => "docker",
            Dialect::Podman => "podman",
        })
    }
}

impl Dialect {
    /// The engine that answered `/version` so: Podman names one of its
    /// components `Podman Engine`; anything else is taken for Docker.
    pub fn of_version(version: &SystemVersion) -> Dialect {
        let podman = version
            .components
            .iter()
            .flatten()
            .any(|c| c.name.starts_with("Podman"));
        match podman {
            true => Dialect::Podman,
            false => Dialect::Docker,
        }
    }

    /// `NOT_SUPPORTED` when a container cannot be made to run under
    /// `runtime`, which it asks for by name. Podman takes the whole
    /// service's runtime and silently ignores `HostConfig.Runtime` (while
    /// `/info` lists every runtime of its configuration, installed or
    /// not): a container asking for gVisor would run under runc,
    /// unsandboxed. Only the engine's own default (`runc`) is honoured.
    pub(crate) fn refuse_runtime(self, runtime: &str) -> Result<(), CallError> {
        match self {
            Dialect::Docker => Ok(()),
            Dialect::Podman if runtime == "runc" => Ok(()),
            Dialect::Podman => Err(CallError::new(
                NOT_SUPPORTED,
                format!(
                    "runtime {runtime:?} cannot be chosen per container on Podman (it runs every \
                     container under the runtime of its service); the container was not made"
                ),
            )),
        }
    }

    /// An event in Docker's words; `None` for one Docker has no match for.
    /// Podman says `exec` for `exec_start`, `exec_died` for `exec_die` and
    /// `remove` for `destroy`, and adds `init` and `cleanup`. (It has no
    /// `exec_create` and no network events: those are missing.)
    pub(crate) fn event(self, mut event: EventMessage) -> Option<EventMessage> {
        if self == Dialect::Docker {
            return Some(event);
        }
        let action = event.action.as_deref().unwrap_or_default();
        let docker = match action {
            "init" | "cleanup" => return None,
            "exec" => "exec_start",
            "exec_died" => "exec_die",
            "remove" => "destroy",
            _ => return Some(event),
        };
        event.action = Some(docker.to_owned());
        Some(event)
    }

    /// A stats sample as Docker gives it: Podman's `Id` (not `id`, so
    /// bollard leaves it empty) is the container `id` the stats were asked
    /// for, and its `name` lacks Docker's leading `/`.
    pub(crate) fn stats(
        self,
        mut stats: ContainerStatsResponse,
        id: &str,
    ) -> ContainerStatsResponse {
        if self == Dialect::Docker {
            return stats;
        }
        if stats.id.as_deref().unwrap_or_default().is_empty() {
            stats.id = Some(id.to_owned());
        }
        if let Some(name) = stats.name.as_mut().filter(|n| !n.starts_with('/')) {
            name.insert(0, '/');
        }
        stats
    }

    /// An image's tag as Docker names it: Podman stores an image imported
    /// or built without a registry as `localhost/NAME`, and Docker Hub's as
    /// `docker.io/NAME` (`docker.io/library/NAME` for official ones); a
    /// create or pull with Docker's short name finds either.
    pub(crate) fn image_tag(self, tag: &str) -> String {
        if self == Dialect::Docker {
            return tag.to_owned();
        }
        let short = tag
            .strip_prefix("localhost/")
            .or_else(|| tag.strip_prefix("docker.io/library/"))
            .or_else(|| tag.strip_prefix("docker.io/"))
            .unwrap_or(tag);
        short.to_owned()
    }
}

/// The HTTP status Docker answers for what the engine answered with
/// `status` and `message`. Podman answers 500 where Docker answers 409
/// for a name already in use (`container create: … the container name
/// "web" is already in use by …`); Docker never sends that text with a
/// 500, so this needs no dialect.
pub(crate) fn docker_status(status: u16, message: &str) -> u16 {
    if status == 500 && message.contains("is already in use") {
        return 409;
    }
    status
}

/// The engine's message for a missing container in Docker's words:
/// Podman says `no container with name or ID "web" found: no such
/// container` where Docker says `No such container: web`.
pub(crate) fn docker_message(status: u16, message: &str) -> Option<String> {
    const PODMAN: &str = "no container with name or ID \"";
    if status != 404 {
        return None;
    }
    let rest = message.strip_prefix(PODMAN)?;
    let (name, _) = rest.split_once("\" found")?;
    Some(format!("No such container: {name}"))
}

#[cfg(test)]
mod tests {
    use bollard::models::{EventActor, SystemVersionComponents};

    use super::*;

    fn version(component: &str) -> SystemVersion {
        SystemVersion {
            components: Some(vec![SystemVersionComponents {
                name: component.into(),
                version: "1".into(),
                details: None,
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn the_engine_says_which_dialect_it_speaks() {
        assert_eq!(
            Dialect::of_version(&version("Podman Engine")),
            Dialect::Podman
        );
        assert_eq!(Dialect::of_version(&version("Engine")), Dialect::Docker);
        assert_eq!(
            Dialect::of_version(&SystemVersion::default()),
            Dialect::Docker
        );
        assert_eq!("podman".parse::<Dialect>().ok(), Some(Dialect::Podman));
        assert_eq!("docker".parse::<Dialect>().ok(), Some(Dialect::Docker));
        assert!("containerd".parse::<Dialect>().is_err());
        assert_eq!(Dialect::Podman.to_string(), "podman");
    }

    #[test]
    fn a_runtime_per_container_is_refused_on_podman_only() {
        assert!(Dialect::Docker.refuse_runtime("runsc").is_ok());
        assert!(Dialect::Podman.refuse_runtime("runc").is_ok());
        let refused = Dialect::Podman.refuse_runtime("runsc").unwrap_err();
        assert_eq!(refused.code, NOT_SUPPORTED);
        assert!(refused.message.contains("Podman"), "{}", refused.message);
    }

    fn event(action: &str) -> EventMessage {
        EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor::default()),
            ..Default::default()
        }
    }

    #[test]
    fn podman_events_take_dockers_names() {
        let action = |d: Dialect, a: &str| d.event(event(a)).map(|e| e.action.unwrap_or_default());
        assert_eq!(
            action(Dialect::Podman, "exec_died").as_deref(),
            Some("exec_die")
        );
        assert_eq!(
            action(Dialect::Podman, "exec").as_deref(),
            Some("exec_start")
        );
        assert_eq!(
            action(Dialect::Podman, "remove").as_deref(),
            Some("destroy")
        );
        assert_eq!(action(Dialect::Podman, "start").as_deref(), Some("start"));
        assert_eq!(action(Dialect::Podman, "init"), None);
        assert_eq!(action(Dialect::Podman, "cleanup"), None);
        assert_eq!(action(Dialect::Docker, "remove").as_deref(), Some("remove"));
    }

    #[test]
    fn podman_stats_carry_the_id_and_a_slashed_name() {
        let sample = ContainerStatsResponse {
            name: Some("web".into()),
            ..Default::default()
        };
        let fixed = Dialect::Podman.stats(sample.clone(), "abc");
        assert_eq!(fixed.id.as_deref(), Some("abc"));
        assert_eq!(fixed.name.as_deref(), Some("/web"));
        assert_eq!(Dialect::Docker.stats(sample, "abc").id, None);
    }

    #[test]
    fn podman_image_tags_lose_their_default_registries() {
        let tag = |t| Dialect::Podman.image_tag(t);
        assert_eq!(
            tag("localhost/dockwire/testbox:latest"),
            "dockwire/testbox:latest"
        );
        assert_eq!(tag("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(tag("docker.io/me/app:1"), "me/app:1");
        assert_eq!(tag("127.0.0.1:5000/x:1"), "127.0.0.1:5000/x:1");
        assert_eq!(Dialect::Docker.image_tag("localhost/x:1"), "localhost/x:1");
    }

    #[test]
    fn a_name_in_use_is_a_conflict_on_either_engine() {
        let podman = "container create: creating container storage: the container name \"w\" \
                      is already in use by 1f2e. You have to remove that container";
        assert_eq!(docker_status(500, podman), 409);
        assert_eq!(docker_status(409, "Conflict. The container name"), 409);
        assert_eq!(docker_status(500, "something else"), 500);
    }

    #[test]
    fn podmans_missing_container_is_said_in_dockers_words() {
        let podman = "no container with name or ID \"web\" found: no such container";
        assert_eq!(
            docker_message(404, podman).as_deref(),
            Some("No such container: web")
        );
        assert_eq!(docker_message(500, podman), None);
        assert_eq!(docker_message(404, "No such container: web"), None);
    }
}
