//! A caller's own objects: the one place where a reference to a
//! container, volume or network is resolved, and what a user sees of its
//! objects.
//!
//! An admin's reference goes to the engine as given. A user's resolves
//! only among the objects sealed as its own ([`Caller::owns`]): first by
//! its own name (the engine's `dw-<tag>-<name>`), then by id prefix
//! (containers and networks; an ambiguous prefix is refused). Anything
//! else (another peer's object, an operator's, one made outside
//! dockwire) gives exactly what a missing object gives: the catalog's
//! `*_NOT_FOUND` code and a message naming only the user's reference.
//! What a user gets back shows its own names, the engine's prefix
//! stripped.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{
    ContainerInspectResponse, ContainerSummary, EndpointSettings, EventMessage, MountPoint,
    Network, Volume,
};
use bollard::query_parameters as q;
use dockwire_core::CallError;

use crate::access::Caller;
use crate::catalog::*;
use crate::dialect;
use crate::engine::Engine;
use crate::error::{self, Subject, engine_error, invalid_input};
use crate::ownership::{Kind, check_name, engine_name, tag, user_name};

/// What a user gets for a reference that names none of its objects,
/// whether or not the engine has one by that name: the engine's own words
/// for a missing object.
pub(crate) fn not_found(kind: Kind, reference: &str) -> CallError {
    let code = match kind {
        Kind::Container => CONTAINER_NOT_FOUND,
        Kind::Volume => VOLUME_NOT_FOUND,
        Kind::Network => NETWORK_NOT_FOUND,
        Kind::Image => IMAGE_NOT_FOUND,
    };
    CallError::new(code, format!("No such {}: {reference}", kind.as_str()))
}

/// How `caller` sees the engine's name `engine`: its own name for its own
/// objects, the engine's name otherwise.
pub(crate) fn shown(caller: &Caller, engine: &str) -> String {
    match user_name(&caller.owner, engine) {
        Some(name) if engine.starts_with('/') => format!("/{name}"),
        Some(name) => name.to_owned(),
        None => engine.to_owned(),
    }
}

/// A user's `name` filter pattern (a regular expression the engine
/// matches on its names) made to match the engine's names of the user's
/// own: one anchored at the start (`^web`, `^/web`) is anchored after the
/// user's prefix; any other already matches inside the engine's name.
pub(crate) fn own_name_pattern(caller: &Caller, pattern: &str) -> String {
    match pattern.strip_prefix('^') {
        Some(rest) if !caller.is_admin() => {
            let rest = rest.strip_prefix('/').unwrap_or(rest);
            format!("^/?dw-{}-{rest}", tag(&caller.owner))
        }
        _ => pattern.to_owned(),
    }
}

/// An engine error on `caller`'s own objects as a user may see it: its
/// own names in place of the engine's.
pub(crate) fn user_error(caller: &Caller, mut e: CallError) -> CallError {
    if !caller.is_admin() {
        let prefix = format!("dw-{}-", tag(&caller.owner));
        e.message = e.message.replace(&prefix, "");
    }
    e
}

impl Engine {
    /// The client and the id of the container `reference` names, once
    /// `caller` may act on it. An admin's reference is passed on as given,
    /// with no extra round trip; a user's is resolved among its own
    /// containers to the full id, so that a name reused in between cannot
    /// redirect the call.
    pub(crate) async fn container(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<(Docker, String), CallError> {
        let docker = self.docker().await?;
        if caller.is_admin() {
            // A call naming a container touches it (its idle timeout),
            // and holds it while the call runs.
            self.lifetimes.touch(caller.call, reference);
            return Ok((docker, reference.to_owned()));
        }
        let own = self
            .own_containers(&docker, caller, true, HashMap::new())
            .await?;
        let candidates = own.iter().map(|c| {
            let name = c.names.iter().flatten().next().map(String::as_str);
            (
                c.id.as_deref().unwrap_or_default(),
                name.and_then(|n| user_name(&caller.owner, n)),
            )
        });
        let id = pick(Kind::Container, reference, candidates)?;
        self.lifetimes.touch(caller.call, &id);
        Ok((docker, id))
    }

    /// The client and the inspection of the container `reference` names,
    /// once `caller` may act on it; a user's shows its own names.
    pub(crate) async fn inspect_owned(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<(Docker, ContainerInspectResponse), CallError> {
        let (docker, id) = self.container(caller, reference).await?;
        let mut info = dialect::inspect_container(&docker, &id)
            .await
            .map_err(|e| match error::container(e) {
                e if e.code == CONTAINER_NOT_FOUND && !caller.is_admin() => {
                    not_found(Kind::Container, reference)
                }
                e => e,
            })?;
        if !caller.is_admin() {
            user_inspection(caller, &mut info);
        }
        Ok((docker, info))
    }

    /// `caller`'s own containers (`all`: running or not) among those
    /// `filters` select: labelled as its own, and sealed so.
    pub(crate) async fn own_containers(
        &self,
        docker: &Docker,
        caller: &Caller,
        all: bool,
        mut filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<ContainerSummary>, CallError> {
        caller.own_objects(&mut filters);
        let options = q::ListContainersOptions {
            all,
            filters: Some(filters),
            ..Default::default()
        };
        let listed = dialect::list_containers(docker, Some(options))
            .await
            .map_err(error::container)?;
        let key = &self.config.owner_key;
        Ok(listed
            .into_iter()
            .filter(|c| {
                let name = c.names.iter().flatten().next();
                match (name, &c.labels) {
                    (Some(name), Some(labels)) => caller.owns(key, Kind::Container, name, labels),
                    _ => false,
                }
            })
            .collect())
    }

    /// The client and the engine's name of the volume `reference` names,
    /// once `caller` may act on it. Volumes have no ids: a user's
    /// reference is its own name.
    pub(crate) async fn volume(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<(Docker, String), CallError> {
        let docker = self.docker().await?;
        if caller.is_admin() {
            return Ok((docker, reference.to_owned()));
        }
        if check_name("volume", reference).is_err() {
            return Err(not_found(Kind::Volume, reference));
        }
        let name = engine_name(&caller.owner, reference);
        match docker.inspect_volume(&name).await {
            Ok(volume)
                if caller.owns(&self.config.owner_key, Kind::Volume, &name, &volume.labels) =>
            {
                Ok((docker, name))
            }
            Ok(_) => Err(not_found(Kind::Volume, reference)),
            Err(e) => match engine_error(Subject::Volume, e) {
                e if e.code == VOLUME_NOT_FOUND => Err(not_found(Kind::Volume, reference)),
                e => Err(e),
            },
        }
    }

    /// `caller`'s own volumes among those `filters` select.
    pub(crate) async fn own_volumes(
        &self,
        docker: &Docker,
        caller: &Caller,
        mut filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<Volume>, CallError> {
        caller.own_objects(&mut filters);
        let options = q::ListVolumesOptions {
            filters: Some(filters),
        };
        let listed = docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| engine_error(Subject::Volume, e))?;
        let key = &self.config.owner_key;
        Ok(listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| caller.owns(key, Kind::Volume, &v.name, &v.labels))
            .collect())
    }

    /// The client and the id of the network `reference` names, once
    /// `caller` may act on it.
    pub(crate) async fn network(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<(Docker, String), CallError> {
        let docker = self.docker().await?;
        if caller.is_admin() {
            return Ok((docker, reference.to_owned()));
        }
        let own = self.own_networks(&docker, caller, HashMap::new()).await?;
        let candidates = own.iter().map(|n| {
            (
                n.id.as_deref().unwrap_or_default(),
                n.name.as_deref().and_then(|n| user_name(&caller.owner, n)),
            )
        });
        let id = pick(Kind::Network, reference, candidates)?;
        Ok((docker, id))
    }

    /// `caller`'s own networks among those `filters` select.
    pub(crate) async fn own_networks(
        &self,
        docker: &Docker,
        caller: &Caller,
        mut filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<Network>, CallError> {
        caller.own_objects(&mut filters);
        let options = q::ListNetworksOptions {
            filters: Some(filters),
        };
        let listed = docker
            .list_networks(Some(options))
            .await
            .map_err(|e| engine_error(Subject::Network, e))?;
        let key = &self.config.owner_key;
        Ok(listed
            .into_iter()
            .filter(|n| match (&n.name, &n.labels) {
                (Some(name), Some(labels)) => caller.owns(key, Kind::Network, name, labels),
                _ => false,
            })
            .collect())
    }

    /// `event` as `caller` may see it: a user sees only the events of its
    /// own containers (the event's attributes carry the container's labels
    /// and name, so the seal is checked on them), with its own names.
    pub(crate) fn own_event(
        &self,
        caller: &Caller,
        mut event: EventMessage,
    ) -> Option<EventMessage> {
        if caller.is_admin() {
            return Some(event);
        }
        let attributes = event.actor.as_mut()?.attributes.as_mut()?;
        let name = attributes.get("name")?;
        if !caller.owns(&self.config.owner_key, Kind::Container, name, attributes) {
            return None;
        }
        let name = shown(caller, name);
        attributes.insert("name".into(), name);
        Some(event)
    }
}

/// The id of the one candidate (id, the caller's name for it) that
/// `reference` names: by name first, then by id prefix.
fn pick<'a>(
    kind: Kind,
    reference: &str,
    candidates: impl Iterator<Item = (&'a str, Option<&'a str>)> + Clone,
) -> Result<String, CallError> {
    let mut named = candidates
        .clone()
        .filter(|(_, name)| *name == Some(reference));
    if let Some((id, _)) = named.next() {
        if named.next().is_some() {
            return Err(ambiguous(kind, reference));
        }
        return Ok(id.to_owned());
    }
    if reference.is_empty() {
        return Err(not_found(kind, reference));
    }
    let mut prefixed = candidates.filter(|(id, _)| id.starts_with(reference));
    match (prefixed.next(), prefixed.next()) {
        (Some((id, _)), None) => Ok(id.to_owned()),
        (Some(_), Some(_)) => Err(ambiguous(kind, reference)),
        (None, _) => Err(not_found(kind, reference)),
    }
}

fn ambiguous(kind: Kind, reference: &str) -> CallError {
    invalid_input(format!(
        "{reference} names more than one of your {}s: give more of the id",
        kind.as_str()
    ))
}

/// A user's own container's inspection, with its own names and none of
/// the engine's host paths.
fn user_inspection(caller: &Caller, info: &mut ContainerInspectResponse) {
    if let Some(name) = &info.name {
        info.name = Some(shown(caller, name));
    }
    if let Some(settings) = &mut info.network_settings {
        user_networks(caller, &mut settings.networks);
    }
    if let Some(host) = &mut info.host_config {
        if let Some(mode) = &host.network_mode {
            host.network_mode = Some(shown(caller, mode));
        }
    }
    user_mounts(caller, &mut info.mounts);
    // The engine's files for it on the host: no user's business.
    info.log_path = None;
    info.resolv_conf_path = None;
    info.hostname_path = None;
    info.hosts_path = None;
    info.graph_driver = None;
    if let Some(image) = info.config.as_mut().and_then(|c| c.image.as_mut()) {
        *image = own_image_name(caller, image);
    }
}

/// A user's own container's summary, with its own names.
pub(crate) fn user_summary(caller: &Caller, summary: &mut ContainerSummary) {
    if let Some(names) = &mut summary.names {
        for name in names.iter_mut() {
            *name = shown(caller, name);
        }
    }
    if let Some(settings) = &mut summary.network_settings {
        user_networks(caller, &mut settings.networks);
    }
    if let Some(host) = &mut summary.host_config {
        if let Some(mode) = &host.network_mode {
            host.network_mode = Some(shown(caller, mode));
        }
    }
    user_mounts(caller, &mut summary.mounts);
    if let Some(image) = &mut summary.image {
        *image = own_image_name(caller, image);
    }
}

/// An image name as `caller` gives it: without its own namespace (the
/// engine's `dw-<tag>/app:1` is its `app:1`, see `crate::image_owner`).
fn own_image_name(caller: &Caller, name: &str) -> String {
    name.replacen(&format!("dw-{}/", tag(&caller.owner)), "", 1)
}

/// A user's own volume, with its own name and no host path.
pub(crate) fn user_volume(caller: &Caller, volume: &mut Volume) {
    volume.name = shown(caller, &volume.name);
    volume.mountpoint = String::new();
}

/// A user's own network, with its own name.
pub(crate) fn user_network(caller: &Caller, network: &mut Network) {
    if let Some(name) = &network.name {
        network.name = Some(shown(caller, name));
    }
}

fn user_networks(caller: &Caller, networks: &mut Option<HashMap<String, EndpointSettings>>) {
    if let Some(map) = networks.take() {
        *networks = Some(
            map.into_iter()
                .map(|(name, endpoint)| (shown(caller, &name), endpoint))
                .collect(),
        );
    }
}

/// A user's own container's mounts: its volumes by its own names, and
/// not their host paths (a bind mount's source is the user's to know).
fn user_mounts(caller: &Caller, mounts: &mut Option<Vec<MountPoint>>) {
    for mount in mounts.iter_mut().flatten() {
        if let Some(name) = &mount.name {
            mount.name = Some(shown(caller, name));
            mount.source = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_sees_its_own_names_and_only_its_own_prefix_is_stripped() {
        let (alice, bob) = (Caller::test_user("alice"), Caller::test_user("bob"));
        let hers = engine_name("alice", "web");
        assert_eq!(shown(&alice, &format!("/{hers}")), "/web");
        assert_eq!(shown(&alice, &hers), "web");
        assert_eq!(shown(&bob, &hers), hers);
        assert_eq!(shown(&alice, "bridge"), "bridge");
        let conflict = CallError::new(CONFLICT, format!("name \"/{hers}\" is in use"));
        assert_eq!(
            user_error(&alice, conflict.clone()).message,
            "name \"/web\" is in use"
        );
        assert_eq!(user_error(&bob, conflict.clone()).message, conflict.message);
    }

    fn ids<'a>(
        list: &'a [(&'a str, Option<&'a str>)],
    ) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + Clone {
        list.iter().copied()
    }

    #[test]
    fn a_reference_is_a_name_first_then_an_unambiguous_id_prefix() {
        let own = [
            ("402f151820cd11", Some("web")),
            ("4031aa", Some("402f")),
            ("abc123", None),
        ];
        let pick = |r| pick(Kind::Container, r, ids(&own));
        // The name wins over an id prefix it shadows.
        assert_eq!(pick("402f").unwrap(), "4031aa");
        assert_eq!(pick("web").unwrap(), "402f151820cd11");
        assert_eq!(pick("402f1").unwrap(), "402f151820cd11");
        assert_eq!(pick("abc").unwrap(), "abc123");
        let e = pick("40").unwrap_err();
        assert_eq!(e.code, dockwire_core::ErrorCode::INVALID_INPUT);
        for missing in ["", "zz", "402f151820cd11ff", "db"] {
            let e = pick(missing).unwrap_err();
            assert_eq!(e.code, CONTAINER_NOT_FOUND, "{missing:?}");
            assert_eq!(e.message, format!("No such container: {missing}"));
        }
    }
}
