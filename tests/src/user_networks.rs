//! Users' networks behind dockwire's back: the host rules dockwire puts on
//! a user bridge, and the cleanup of what a test's users got (their
//! networks and those rules), so that none outlives the suite.

use std::collections::HashMap;
use std::process::Command;

use bollard::query_parameters as q;
use dockwire_docker::catalog::LABEL_OWNER;

use crate::docker::{engine, on_engine};

/// The comment dockwire's rules carry.
pub const RULE_COMMENT: &str = "dockwire-user-network";

/// The bridge driver's option naming a network's interface.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

/// The chains dockwire puts rules in: (table, chain).
const CHAINS: [(&str, &str); 2] = [("filter", "INPUT"), ("mangle", "FORWARD")];

/// The lines of `iptables -t filter -S INPUT` and `-t mangle -S FORWARD`
/// (and ip6tables') that name interface `bridge`, each after its tool and
/// table (`iptables filter: -A INPUT …`).
pub fn rules_for(bridge: &str) -> Vec<String> {
    let mut found = Vec::new();
    for tool in ["iptables", "ip6tables"] {
        for (table, chain) in CHAINS {
            for line in list(tool, table, chain) {
                if names(&line, bridge) {
                    found.push(format!("{tool} {table}: {line}"));
                }
            }
        }
    }
    found
}

/// Whether rule `line` matches on interface `bridge`, in or out.
fn names(line: &str, bridge: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .any(|w| matches!(w[0], "-i" | "-o") && w[1] == bridge)
}

/// Removes, when dropped, the networks dockwire made for `owners` and the
/// host rules on their bridges. For tests whose users' containers join
/// their own networks; drop it after their containers are gone (make it
/// first, and [`add`](Self::add) owners known only later, such as keys).
pub struct UserNetworks(std::sync::Mutex<Vec<String>>);

impl UserNetworks {
    /// The networks of `owners`, removed when dropped.
    pub fn of<S: Into<String>>(owners: impl IntoIterator<Item = S>) -> Self {
        UserNetworks(std::sync::Mutex::new(
            owners.into_iter().map(Into::into).collect(),
        ))
    }

    /// Removes `owner`'s networks too, when dropped.
    pub fn add(&self, owner: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(owner.into());
    }
}

impl Drop for UserNetworks {
    fn drop(&mut self) {
        let owners = std::mem::take(
            self.0
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for owner in &owners {
            remove_networks_of(owner);
        }
    }
}

/// Removes every network labelled as `owner`'s, and its bridge's rules.
pub fn remove_networks_of(owner: &str) {
    for network in networks_of(owner) {
        remove_with_rules(&network);
    }
}

/// Removes `owner`'s default network (`dw-<tag>`, made on its first
/// container) and its rules: what a test's user keeps by design, unlike
/// the networks it makes itself.
pub fn remove_default_network_of(owner: &str) {
    for network in networks_of(owner) {
        if is_default_network(network.name.as_deref().unwrap_or_default()) {
            remove_with_rules(&network);
        }
    }
}

/// The networks labelled as `owner`'s.
fn networks_of(owner: &str) -> Vec<bollard::models::Network> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_OWNER}={owner}")])]);
    let options = q::ListNetworksOptions {
        filters: Some(filters),
    };
    on_engine(engine().list_networks(Some(options))).unwrap_or_default()
}

/// Whether `name` is a user's default network's (`dw-<12 hex>`).
pub fn is_default_network(name: &str) -> bool {
    name.strip_prefix("dw-")
        .is_some_and(|tag| tag.len() == 12 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Removes `network` and dockwire's rules on its bridge, if any.
pub fn remove_with_rules(network: &bollard::models::Network) {
    let Some(id) = &network.id else { return };
    let _ = on_engine(engine().remove_network(id));
    let name = network.name.as_deref().unwrap_or_default();
    if let Some(bridge) = bridge_name(name, network.options.as_ref()) {
        remove_rules_for(&bridge);
    }
}

/// The bridge interface of the network `name`: the one its `options`
/// name. Podman
/// does not show it; a user network's is then the one its name gives
/// (dockwire asks Podman for that name, and Podman keeps it).
pub fn bridge_name(name: &str, options: Option<&HashMap<String, String>>) -> Option<String> {
    options
        .and_then(|o| o.get(BRIDGE_NAME_OPTION))
        .cloned()
        .or_else(|| {
            name.starts_with("dw-")
                .then(|| dockwire_docker::user_bridge_name(name))
        })
}

/// Deletes dockwire's rules on `bridge`, in both families.
pub fn remove_rules_for(bridge: &str) {
    for tool in ["iptables", "ip6tables"] {
        for (table, chain) in CHAINS {
            for line in list(tool, table, chain) {
                if !names(&line, bridge) || !line.contains(RULE_COMMENT) {
                    continue;
                }
                let Some(spec) = line.strip_prefix("-A ") else {
                    continue;
                };
                let mut args = vec!["-w", "-t", table, "-D"];
                args.extend(spec.split_whitespace());
                let _ = Command::new(tool).args(&args).output();
            }
        }
    }
}

/// `tool -t table -S chain`, line by line; none when the tool is missing.
fn list(tool: &str, table: &str, chain: &str) -> Vec<String> {
    match Command::new(tool)
        .args(["-w", "-t", table, "-S", chain])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Rules that accept everything to and from `bridge` in `DOCKER-USER`
/// (the chain Docker keeps first in `filter`'s `FORWARD`, for operators'
/// rules), until dropped: what traffic between bridges meets under an
/// operator's permissive rule, or while Docker rewrites its isolation
/// rules. IPv4 only.
pub struct ForwardAccepted {
    specs: Vec<Vec<String>>,
}

/// Docker's chain for operators' `FORWARD` rules.
const USER_CHAIN: &str = "DOCKER-USER";

impl ForwardAccepted {
    /// Inserts the rules.
    pub fn on(bridge: &str) -> ForwardAccepted {
        let specs: Vec<Vec<String>> = ["-i", "-o"]
            .iter()
            .map(|dir| {
                [USER_CHAIN, dir, bridge, "-j", "ACCEPT"]
                    .map(str::to_owned)
                    .to_vec()
            })
            .collect();
        for spec in &specs {
            let mut args = vec!["-w", "-I", USER_CHAIN, "1"];
            args.extend(spec[1..].iter().map(String::as_str));
            let out = Command::new("iptables").args(&args).output().unwrap();
            assert!(out.status.success(), "iptables {args:?}: {out:?}");
        }
        ForwardAccepted { specs }
    }
}

impl Drop for ForwardAccepted {
    fn drop(&mut self) {
        for spec in &self.specs {
            let mut args = vec!["-w", "-D"];
            args.extend(spec.iter().map(String::as_str));
            let _ = Command::new("iptables").args(&args).output();
        }
    }
}

/// dockwire's `mangle` `FORWARD` rules on `bridge` (IPv4), taken out until
/// dropped, then put back as they were: a test's control that shows what
/// they hold back.
pub struct ForwardFenceLifted {
    lines: Vec<String>,
}

impl ForwardFenceLifted {
    /// Deletes the rules; panics if there are none.
    pub fn on(bridge: &str) -> ForwardFenceLifted {
        let lines: Vec<String> = list("iptables", "mangle", "FORWARD")
            .into_iter()
            .filter(|l| names(l, bridge) && l.contains(RULE_COMMENT))
            .collect();
        assert!(!lines.is_empty(), "no mangle FORWARD rule names {bridge}");
        for line in &lines {
            let mut args = vec!["-w", "-t", "mangle", "-D"];
            args.extend(line.trim_start_matches("-A ").split_whitespace());
            let out = Command::new("iptables").args(&args).output().unwrap();
            assert!(out.status.success(), "iptables {args:?}: {out:?}");
        }
        ForwardFenceLifted { lines }
    }
}

impl Drop for ForwardFenceLifted {
    fn drop(&mut self) {
        for line in self.lines.iter().rev() {
            let mut args = vec!["-w", "-t", "mangle", "-I", "FORWARD", "1"];
            args.extend(line.trim_start_matches("-A FORWARD ").split_whitespace());
            let _ = Command::new("iptables").args(&args).output();
        }
    }
}
