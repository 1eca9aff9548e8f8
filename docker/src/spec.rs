//! A container spec made into the engine's create body: the labels
//! dockwire writes (ownership, auto-remove, server), the mounts, and the
//! host config, once the caller may use what the spec asks for.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, HostConfig, Mount as EngineMount, MountType};
use dockwire_core::CallError;

use crate::access::Caller;
use crate::catalog::*;
use crate::config::Config;
use crate::error::invalid_input;
use crate::hardening;
use crate::lifetime::Lifetime;
use crate::ownership::{Kind, owned_labels};
use crate::publish;
use crate::runtime;
use crate::sandbox;
use crate::user_network;

/// The labels a created container named `name` on the engine gets: the
/// caller's, minus any `dockwire.*`, plus dockwire's own, sealed;
/// `auto_remove`: dockwire removes it when its call ends
/// (`dockwire.auto-remove`, swept after a crash). Auto-remove is written
/// either way, `true` or `false`, so that no image label can supply it.
pub(crate) fn labels(
    config: &Config,
    caller: &Caller,
    asked: &BTreeMap<String, String>,
    auto_remove: bool,
    name: &str,
    lifetime: Lifetime,
) -> HashMap<String, String> {
    let mut labels = owned_labels(&caller.owner, asked);
    labels.insert(LABEL_AUTO_REMOVE.into(), auto_remove.to_string());
    lifetime.write_labels(&mut labels);
    if let Some(id) = &config.server_id {
        labels.insert(LABEL_SERVER.into(), id.clone());
    }
    config
        .owner_key
        .seal_labels(Kind::Container, name, &mut labels);
    labels
}

/// The engine's create body for `spec`, of a container named `name` on
/// the engine (its mounts' and network's names the engine's too).
/// `engine_auto_remove` asks the engine itself to remove the container
/// when it exits.
pub(crate) fn create_body(
    config: &Config,
    caller: &Caller,
    spec: &ContainerSpec,
    name: &str,
    engine_auto_remove: bool,
) -> Result<ContainerCreateBody, CallError> {
    if spec.image.is_empty() {
        return Err(invalid_input("`image` is empty"));
    }
    caller.check_spec(spec)?;
    let lifetime = Lifetime::decide(config, caller, spec)?;
    let network_mode = user_network::network_mode(config, caller, spec)?;
    let mounts = spec
        .mounts
        .iter()
        .map(|m| {
            if m.source.is_empty() || !m.target.starts_with('/') {
                return Err(invalid_input(format!(
                    "a mount needs a source and an absolute target, got {:?} -> {:?}",
                    m.source, m.target
                )));
            }
            Ok(EngineMount {
                source: Some(m.source.clone()),
                target: Some(m.target.clone()),
                read_only: Some(m.read_only),
                typ: Some(if m.source.starts_with('/') {
                    MountType::BIND
                } else {
                    MountType::VOLUME
                }),
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut host = HostConfig {
        mounts: (!mounts.is_empty()).then_some(mounts),
        network_mode,
        auto_remove: Some(engine_auto_remove),
        ..Default::default()
    };
    let mut body = ContainerCreateBody::default();
    sandbox::apply(config, caller, spec, &mut body, &mut host)?;
    publish::apply(config, caller, &spec.ports, &mut body, &mut host)?;
    host.runtime = runtime::chosen(config, caller, spec.runtime.as_deref())?;
    hardening::harden(config, caller, &mut host);
    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: (!spec.cmd.is_empty()).then(|| spec.cmd.clone()),
        entrypoint: spec.entrypoint.clone(),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        working_dir: spec.workdir.clone(),
        user: spec.user.clone(),
        // Only a container dockwire removes itself, when its `run` call
        // ends, is marked for the sweep after a crash. One the engine
        // removes (a `create` with autoRemove, as `docker run -d --rm`)
        // outlives its call by design: a restarted server must not
        // take it.
        labels: Some(labels(
            config,
            caller,
            &spec.labels,
            spec.auto_remove && !engine_auto_remove,
            name,
            lifetime,
        )),
        tty: Some(spec.tty),
        open_stdin: Some(spec.stdin),
        stdin_once: Some(spec.stdin),
        attach_stdin: Some(spec.stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(host),
        ..body
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use dockwire_service::CallContext;

    /// A caller as `engine` sees peer `peer`.
    fn caller(config: &Config, peer: &str) -> Caller {
        let engine = Engine::new(
            || Err(bollard::errors::Error::RequestTimeoutError),
            config.clone(),
        );
        let ctx = CallContext::new(&dockwire_service::Peer::named(peer.into()), "1");
        engine
            .caller(&ctx)
            .expect("without roles every peer is an admin")
    }

    #[test]
    fn callers_cannot_forge_dockwire_labels() {
        let config = Config::from_env();
        let asked = BTreeMap::from([
            ("dockwire.owner".to_owned(), "mallory".to_owned()),
            ("dockwire.anything".to_owned(), "x".to_owned()),
            ("app".to_owned(), "web".to_owned()),
        ]);
        let caller = caller(&config, "alice");
        let labels = labels(&config, &caller, &asked, false, "web", Lifetime::default());
        assert_eq!(
            labels.get("dockwire.owner").map(String::as_str),
            Some("alice")
        );
        assert_eq!(
            labels.get("dockwire.managed").map(String::as_str),
            Some("true")
        );
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        assert!(!labels.contains_key("dockwire.anything"));
        assert_eq!(
            labels.get(LABEL_AUTO_REMOVE).map(String::as_str),
            Some("false")
        );
        // Sealed for alice, on this name only.
        let key = &config.owner_key;
        assert_eq!(key.owner(Kind::Container, "/web", &labels), Some("alice"));
        assert_eq!(key.owner(Kind::Container, "/other", &labels), None);
    }

    #[test]
    fn only_a_container_dockwire_removes_itself_is_marked_for_the_sweep() {
        let config = Config::from_env().with_server_id("me");
        let caller = caller(&config, "alice");
        let mut spec = ContainerSpec::new("img", ["sleep", "60"]);
        spec.auto_remove = true;
        let marked = |engine_auto_remove| {
            let body = create_body(&config, &caller, &spec, "run", engine_auto_remove).unwrap();
            let labels = body.labels.unwrap();
            assert_eq!(labels.get(LABEL_SERVER).map(String::as_str), Some("me"));
            assert_eq!(
                config.owner_key.owner(Kind::Container, "run", &labels),
                Some("alice")
            );
            let engine = body.host_config.unwrap().auto_remove;
            (labels.get(LABEL_AUTO_REMOVE).cloned(), engine)
        };
        // `run`: dockwire removes it after reading its exit code.
        assert_eq!(marked(false), (Some("true".into()), Some(false)));
        // `create` (`run -d --rm`): the engine removes it when it exits.
        assert_eq!(marked(true), (Some("false".into()), Some(true)));
    }
}
