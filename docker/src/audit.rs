//! The audit trail: who asked for what, on which object (target
//! `dockwire::audit`, level INFO). One line when a call reaches the
//! service ([`call`]): the key and name of its peer, its address, its role,
//! the operation and the objects its input names; and one when a container
//! is made ([`created`]): its id, image, command, mounts and network. The
//! call's outcome and duration are on its `dockwire::call` line (see
//! `dockwire_service::CallLog`), with the same key and call id.

use dockwire_core::Request;
use dockwire_service::CallContext;
use serde_json::Value;

use crate::access::{Caller, Role};
use crate::catalog::ContainerSpec;

/// The audit lines' tracing target.
pub const TARGET: &str = "dockwire::audit";

/// The input fields that name the object a call acts on.
const OBJECT_FIELDS: &[&str] = &["id", "container", "network", "volume", "name", "image"];

/// The longest value of a field logged, in characters.
const MAX_FIELD: usize = 256;

/// Logs `ctx`'s call of `request`, as `caller` (`None`: a peer with no
/// role, refused).
pub(crate) fn call(ctx: &CallContext, caller: Option<&Caller>, request: &Request) {
    let role = match caller.map(|c| c.role) {
        Some(Role::Admin) => "admin",
        Some(_) => "user",
        None => "none",
    };
    let remote = ctx
        .remote
        .map(|a| a.to_string())
        .unwrap_or_else(|| "-".into());
    let objects = objects(&request.input);
    tracing::info!(
        target: TARGET,
        key = %ctx.key,
        peer = %loggable(&ctx.peer),
        %remote,
        role = %role,
        operation = %loggable(&request.operation),
        call_id = %loggable(&ctx.call_id),
        objects = %objects,
        "call"
    );
}

/// Logs the container `id` that `caller` made from `spec`.
pub(crate) fn created(caller: &Caller, id: &str, spec: &ContainerSpec) {
    let mounts: Vec<String> = spec
        .mounts
        .iter()
        .map(|m| {
            let ro = if m.read_only { ":ro" } else { "" };
            format!("{}:{}{ro}", loggable(&m.source), loggable(&m.target))
        })
        .collect();
    tracing::info!(
        target: TARGET,
        key = %caller.owner,
        peer = %loggable(&caller.name),
        container = %id,
        image = %loggable(&spec.image),
        cmd = ?spec.cmd.iter().map(|c| loggable(c)).collect::<Vec<_>>(),
        mounts = ?mounts,
        network = %spec.network.as_deref().map(loggable).unwrap_or_else(|| "default".into()),
        "created"
    );
}

/// The objects `input` names, as `field=value` pairs (nested one level,
/// for inputs that wrap a reference).
fn objects(input: &Value) -> String {
    let mut named = Vec::new();
    let mut look = |map: &serde_json::Map<String, Value>| {
        for field in OBJECT_FIELDS {
            if let Some(Value::String(value)) = map.get(*field) {
                named.push(format!("{field}={}", loggable(value)));
            }
        }
    };
    if let Value::Object(map) = input {
        look(map);
        for value in map.values() {
            if let Value::Object(inner) = value {
                look(inner);
            }
        }
    }
    match named.is_empty() {
        true => "-".into(),
        false => named.join(" "),
    }
}

/// A peer's string for a log line: control characters escaped, at most
/// [`MAX_FIELD`] characters kept.
fn loggable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_FIELD)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MAX_FIELD).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_objects_an_input_names_are_found_escaped() {
        assert_eq!(objects(&json!({"id": "web"})), "id=web");
        assert_eq!(
            objects(&json!({"network": "n", "container": "c\n"})),
            "container=c\\n network=n"
        );
        assert_eq!(objects(&json!({"all": true})), "-");
        assert_eq!(objects(&json!(42)), "-");
        let long = "x".repeat(MAX_FIELD + 10);
        assert!(objects(&json!({ "id": long })).ends_with('…'));
    }
}
