//! Connections that outlive a change of trust: each connection keeps the
//! standing (the role, say) its key had at the handshake; once the key's
//! standing is no longer that, the connection's calls are refused and the
//! next [`TrustWatch::recheck`] closes the connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dockwire_core::{CallError, ErrorCode, Request};
use quinn::{Connection, VarInt};

use super::{Fingerprint, peer_fingerprint};
use crate::service::{CallContext, Reply, Service};

/// What a key's trust is now (its role, say); `None`: not trusted. Two
/// answers that differ are two standings: a connection made under one is
/// closed under the other.
pub type Standing = Arc<dyn Fn(&Fingerprint) -> Option<Arc<str>> + Send + Sync>;

/// The application close code of a connection closed because the trust in
/// its key changed.
pub const TRUST_CHANGED: VarInt = VarInt::from_u32(0x7472);

/// The close reason of such a connection.
pub const TRUST_CHANGED_REASON: &str =
    "the server's trust in this key changed since the connection was made";

/// Watches the open connections of a server against their keys' current
/// [`Standing`]: asked on every call ([`serve_quic_watched`]) and, for idle
/// connections, whenever [`recheck`](Self::recheck) is called (a server
/// calls it periodically).
///
/// [`serve_quic_watched`]: super::serve_quic_watched
pub struct TrustWatch {
    standing: Standing,
    open: Mutex<HashMap<usize, Watched>>,
}

struct Watched {
    connection: Connection,
    fingerprint: Option<Fingerprint>,
    at_handshake: Option<Arc<str>>,
}

impl TrustWatch {
    /// A watch asking `standing`.
    pub fn new(standing: Standing) -> Arc<Self> {
        Arc::new(TrustWatch {
            standing,
            open: Mutex::default(),
        })
    }

    /// Closes every watched connection whose key's standing is no longer
    /// the one it had at its handshake; the number closed.
    pub fn recheck(&self) -> usize {
        let changed: Vec<Connection> = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            open.retain(|_, w| w.connection.close_reason().is_none());
            open.values()
                .filter(|w| !self.stands(w))
                .map(|w| w.connection.clone())
                .collect()
        };
        for connection in &changed {
            close(connection);
        }
        changed.len()
    }

    /// How many connections are watched (closed ones are dropped at the
    /// next [`recheck`](Self::recheck)).
    pub fn watched(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Starts watching `connection`, whose handshake just completed.
    pub(crate) fn admit(&self, connection: &Connection) {
        let fingerprint = peer_fingerprint(connection);
        let at_handshake = fingerprint.as_ref().and_then(|f| (self.standing)(f));
        let watched = Watched {
            connection: connection.clone(),
            fingerprint,
            at_handshake,
        };
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(connection.stable_id(), watched);
    }

    /// Stops watching `connection`, which ended.
    pub(crate) fn forget(&self, connection: &Connection) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&connection.stable_id());
    }

    /// Whether `connection`'s key still has its handshake's standing
    /// (a connection not watched does not).
    pub(crate) fn still_stands(&self, connection: &Connection) -> bool {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&connection.stable_id())
            .is_some_and(|w| self.stands(w))
    }

    fn stands(&self, watched: &Watched) -> bool {
        let Some(fingerprint) = &watched.fingerprint else {
            // No key, nothing to change.
            return true;
        };
        watched.at_handshake.is_some() && (self.standing)(fingerprint) == watched.at_handshake
    }
}

/// Closes `connection` for a change of trust.
fn close(connection: &Connection) {
    connection.close(TRUST_CHANGED, TRUST_CHANGED_REASON.as_bytes());
}

/// The service a call on a connection whose trust changed gets: it
/// refuses, `FORBIDDEN`, before anything runs.
pub(crate) struct Revoked;

impl Service for Revoked {
    fn call(&self, _ctx: CallContext, _request: Request) -> Reply {
        Reply::Refuse(CallError::new(
            ErrorCode::FORBIDDEN,
            format!("{TRUST_CHANGED_REASON}: reconnect"),
        ))
    }
}
