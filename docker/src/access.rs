//! Who may do what: each peer's [`Role`], container ownership, and the
//! container options only admins may use.
//!
//! A server with [`Roles`] configured (see [`Config::with_roles`]) asks them
//! for every call's peer. An `admin` may call everything on every
//! container. A `user` sees and acts on only the containers whose
//! `dockwire.owner` label is its own name (containers made outside dockwire
//! have none), may not call the operations declared for admins only (see
//! [`crate::operations`]: image inspect and remove, and every network and
//! volume operation), and may not mount host paths or join the
//! host's (or another container's) network namespace unless the server
//! allows it ([`Config::with_host_access`]). A peer the roles do not know is
//! refused every operation. Every refusal is `FORBIDDEN`.
//!
//! [`Config::with_roles`]: crate::Config::with_roles
//! [`Config::with_host_access`]: crate::Config::with_host_access

use std::fmt;
use std::sync::Arc;

use bollard::models::ContainerInspectResponse;
use dockwire_core::{CallError, ErrorCode};

use crate::catalog::*;

/// What a peer may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Everything, on every container.
    Admin,
    /// Its own containers, image pull and list, and no host access.
    User,
}

/// Decides each peer's role from its name (as the transport identified
/// it); `None` refuses the peer. Asked on every call, so a change to the
/// peers a server trusts takes effect at the next call.
#[derive(Clone)]
pub struct Roles(Arc<RoleOf>);

type RoleOf = dyn Fn(&str) -> Option<Role> + Send + Sync;

impl Roles {
    /// Roles decided by `role`.
    pub fn new(role: impl Fn(&str) -> Option<Role> + Send + Sync + 'static) -> Self {
        Roles(Arc::new(role))
    }

    /// The role of `peer`, if it has one.
    pub fn role(&self, peer: &str) -> Option<Role> {
        (self.0)(peer)
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
    /// The name written in (and compared with) `dockwire.owner`.
    pub owner: String,
    pub role: Role,
    /// Whether this caller may use host paths and host namespaces.
    pub host_access: bool,
}

impl Caller {
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

    /// Refuses a container this caller may not act on.
    pub(crate) fn check_owner(
        &self,
        container: &ContainerInspectResponse,
    ) -> Result<(), CallError> {
        if self.is_admin() {
            return Ok(());
        }
        let owner = container
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|labels| labels.get(LABEL_OWNER));
        if owner.map(String::as_str) == Some(self.owner.as_str()) {
            return Ok(());
        }
        let name = container
            .name
            .as_deref()
            .map(|n| n.trim_start_matches('/'))
            .or(container.id.as_deref())
            .unwrap_or_default();
        Err(forbidden(format!(
            "container {name} does not belong to {}",
            self.owner
        )))
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

    /// Narrows a user's filters (of a container list or events) to its own
    /// containers: label filters must all match.
    pub(crate) fn own_containers(
        &self,
        filters: &mut std::collections::HashMap<String, Vec<String>>,
    ) {
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
