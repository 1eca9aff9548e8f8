//! Who may do what: each peer's [`Role`], ownership, and the container
//! options only admins may use.
//!
//! A server with [`Roles`] configured (see [`Config::with_roles`]) asks them
//! for every call's peer. An `admin` may call everything on every object.
//! A `user` sees and acts on only the containers, volumes and networks
//! sealed as its own by this server (see [`crate::ownership`]): anything
//! else is, to it, indistinguishable from what does not exist (the same
//! `*_NOT_FOUND` code and message). It may not call the operations
//! declared for admins only (see [`crate::operations`]: `system/info`);
//! its images follow `crate::image_owner`'s rules. It may not use volume or network drivers or their options, and
//! may not mount host paths or join the host's (or another container's)
//! network namespace unless the server allows it
//! ([`Config::with_host_access`]). A peer the roles do not know is refused
//! every operation. Those refusals are `FORBIDDEN`.
//!
//! [`Config::with_roles`]: crate::Config::with_roles
//! [`Config::with_host_access`]: crate::Config::with_host_access

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use dockwire_core::{CallError, ErrorCode};

use crate::catalog::*;
use crate::ownership::{Kind, OwnerKey};

/// What a peer may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Everything, on every object.
    Admin,
    /// Its own containers, volumes, networks and images, the shared
    /// images, and no host access.
    User,
}

/// Decides each peer's role from its key (as the transport authenticated
/// it: `sha256:<fingerprint>` over QUIC, `uid:N` over a Unix socket, see
/// [`CallContext::key`]), never from its name; `None` refuses the peer.
/// Asked on every call, so a change to the keys a server trusts takes
/// effect at the next call.
///
/// [`CallContext::key`]: dockwire_service::CallContext::key
#[derive(Clone)]
pub struct Roles(Arc<RoleOf>);

type RoleOf = dyn Fn(&str) -> Option<Role> + Send + Sync;

impl Roles {
    /// Roles decided by `role`.
    pub fn new(role: impl Fn(&str) -> Option<Role> + Send + Sync + 'static) -> Self {
        Roles(Arc::new(role))
    }

    /// The role of the peer with `key`, if it has one.
    pub fn role(&self, key: &str) -> Option<Role> {
        (self.0)(key)
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Roles(..)")
    }
}

/// The caller of one call, as access control sees it.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    /// The owner written in (and compared with) `dockwire.owner`: the
    /// key the peer authenticated with (unless the server sets one).
    pub owner: String,
    /// The peer's display name, for logs and messages.
    pub name: String,
    pub role: Role,
    /// Whether this caller may use host paths and host namespaces.
    pub host_access: bool,
    /// This call's number in the server, unique while it runs (0 in unit
    /// tests): the containers it names are held by it (see
    /// [`crate::lifetime`]).
    pub call: u64,
}

impl Caller {
    /// A `user` whose owner and name are `owner`, for unit tests.
    #[cfg(test)]
    pub(crate) fn test_user(owner: &str) -> Caller {
        Caller {
            owner: owner.into(),
            name: owner.into(),
            role: Role::User,
            host_access: false,
            call: 0,
        }
    }

    /// A caller of `role`, for unit tests.
    #[cfg(test)]
    pub(crate) fn test_as(role: Role) -> Caller {
        Caller {
            role,
            ..Caller::test_user("k")
        }
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Refuses `operation` when this caller lacks the role it needs.
    pub(crate) fn may_call(&self, operation: &str, needs: Role) -> Result<(), CallError> {
        match (needs, self.role) {
            (Role::Admin, Role::User) => Err(forbidden(format!("{operation} needs an admin"))),
            _ => Ok(()),
        }
    }

    /// Whether the object of `kind` named `name` on the engine, carrying
    /// `labels`, is this caller's own: sealed by this server's `key` for
    /// this caller's owner. Never from a bare `dockwire.owner` label.
    pub(crate) fn owns(
        &self,
        key: &OwnerKey,
        kind: Kind,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> bool {
        key.owner(kind, name, labels) == Some(self.owner.as_str())
    }

    /// Refuses what a user may not put in a container: host paths (its
    /// network is decided by `user_network`).
    pub(crate) fn check_spec(&self, spec: &ContainerSpec) -> Result<(), CallError> {
        if self.is_admin() || self.host_access {
            return Ok(());
        }
        if let Some(mount) = spec.mounts.iter().find(|m| m.source.starts_with('/')) {
            return Err(forbidden(format!(
                "mounting the host path {:?} needs an admin",
                mount.source
            )));
        }
        // The network a user may ask for: see `user_network::network_mode`.
        Ok(())
    }

    /// Narrows a user's filters (of a list or events) to objects labelled
    /// as its own: label filters must all match. Only a first cut: the
    /// label can be forged, the seal ([`Caller::owns`]) is what decides.
    pub(crate) fn own_objects(&self, filters: &mut HashMap<String, Vec<String>>) {
        if self.is_admin() {
            return;
        }
        filters
            .entry("label".into())
            .or_default()
            .push(format!("{LABEL_OWNER}={}", self.owner));
    }
}

pub(crate) fn forbidden(message: impl Into<String>) -> CallError {
    CallError::new(ErrorCode::FORBIDDEN, message)
}
