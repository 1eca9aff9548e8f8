//! The host's packet filter rules that keep users' containers off the
//! host: one rule per user bridge (and per IP family), in `INPUT`, which
//! rejects every new connection from the bridge to any address of the
//! host (its gateway address on the bridge and all the others), while
//! replies to connections the host opened still pass.
//!
//! A user network's bridge is named `dw` + 12 hex digits ([`bridge_name`]),
//! so that its rules can be found, checked and removed by name. Rules live
//! as long as their network, not as long as a server: they are installed
//! before the network is made and again (idempotently) before each user
//! container joins it, and removed with the network. Two servers on one
//! engine therefore never remove each other's rules: a network's rules go
//! only when the network goes ([`stale`] finds those of networks removed
//! behind dockwire's back).
//!
//! The rules are written with the `iptables` and `ip6tables` commands, so
//! they work with either of their backends (nf_tables or legacy).

use std::process::Command;
use std::sync::Mutex;

use ring::digest;

/// The comment on every rule of dockwire's: how its rules are found.
const COMMENT: &str = "dockwire-user-network";

/// The chain the kernel passes traffic for the host's own addresses to.
const CHAIN: &str = "INPUT";

/// The prefix of every user bridge's interface name.
pub(crate) const BRIDGE_PREFIX: &str = "dw";

/// Hex digits after the prefix: Linux limits interface names to 15 chars.
const BRIDGE_HEX: usize = 12;

/// Why the rules could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FirewallError {
    /// The command could not be run at all (not installed, not permitted).
    #[error("cannot run {tool}: {source}")]
    Unavailable {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The command ran and failed.
    #[error("`{tool} {args}` failed ({status}): {stderr}")]
    Failed {
        tool: &'static str,
        args: String,
        status: String,
        stderr: String,
    },
    /// A name that is not a user bridge's was given.
    #[error("{0:?} is not a user bridge's name")]
    NotABridge(String),
}

/// The bridge interface name of the user network named `network` on the
/// engine: `dw` and 12 hex digits of its SHA-256.
pub(crate) fn bridge_name(network: &str) -> String {
    let digest = digest::digest(&digest::SHA256, network.as_bytes());
    let hex: String = digest.as_ref()[..BRIDGE_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{BRIDGE_PREFIX}{hex}")
}

/// Whether `name` is a user bridge's name, as [`bridge_name`] makes them.
pub(crate) fn is_bridge_name(name: &str) -> bool {
    name.strip_prefix(BRIDGE_PREFIX).is_some_and(|hex| {
        hex.len() == BRIDGE_HEX
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Installs the rules that reject new connections from `bridge` to the
/// host, unless they are there already.
pub(crate) fn fence(bridge: &str) -> Result<(), FirewallError> {
    check_bridge(bridge)?;
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    for tool in tools() {
        if !has_rule(tool, bridge)? {
            // First in the chain: no rule of the host's can accept the
            // traffic before this one rejects it.
            let mut args = vec!["-w", "-I", CHAIN, "1"];
            args.extend(rule(bridge));
            run(tool, &args)?;
        }
    }
    Ok(())
}

/// Removes `bridge`'s rules (every copy, should two servers have raced to
/// install them).
pub(crate) fn unfence(bridge: &str) -> Result<(), FirewallError> {
    check_bridge(bridge)?;
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    for tool in tools() {
        while has_rule(tool, bridge)? {
            let mut args = vec!["-w", "-D", CHAIN];
            args.extend(rule(bridge));
            run(tool, &args)?;
        }
    }
    Ok(())
}

/// Serializes this process's changes, so that it never installs a rule
/// twice itself.
static LOCK: Mutex<()> = Mutex::new(());

fn check_bridge(bridge: &str) -> Result<(), FirewallError> {
    match is_bridge_name(bridge) {
        true => Ok(()),
        false => Err(FirewallError::NotABridge(bridge.to_owned())),
    }
}

/// The rule's match and target, after the chain.
fn rule(bridge: &str) -> [&str; 13] {
    [
        "-i",
        bridge,
        "-m",
        "conntrack",
        "!",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-m",
        "comment",
        "--comment",
        COMMENT,
        "-j",
        "REJECT",
    ]
}

/// The commands to write rules with: IPv4's always, IPv6's when the host
/// has IPv6 (a container's link-local address reaches the host's on the
/// bridge even on a network without IPv6).
fn tools() -> Vec<&'static str> {
    let mut tools = vec!["iptables"];
    if std::path::Path::new("/proc/net/if_inet6").exists() {
        tools.push("ip6tables");
    }
    tools
}

/// Whether `tool` has `bridge`'s rule: `-C` exits 1 when it has not.
fn has_rule(tool: &'static str, bridge: &str) -> Result<bool, FirewallError> {
    let mut args = vec!["-w", "-C", CHAIN];
    args.extend(rule(bridge));
    let out = command(tool, &args)?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(failed(tool, &args, &out)),
    }
}

/// Runs `tool` with `args`: its stdout, when it succeeds.
fn run(tool: &'static str, args: &[&str]) -> Result<String, FirewallError> {
    let out = command(tool, args)?;
    if !out.status.success() {
        return Err(failed(tool, args, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn command(tool: &'static str, args: &[&str]) -> Result<std::process::Output, FirewallError> {
    Command::new(tool)
        .args(args)
        .output()
        .map_err(|source| FirewallError::Unavailable { tool, source })
}

fn failed(tool: &'static str, args: &[&str], out: &std::process::Output) -> FirewallError {
    FirewallError::Failed {
        tool,
        args: args.join(" "),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_fit_linux_and_match_the_rules_prefix() {
        let name = bridge_name("dw-0123456789ab");
        assert!(name.len() <= 15, "{name}");
        assert!(name.starts_with(BRIDGE_PREFIX) && is_bridge_name(&name));
        assert_eq!(bridge_name("dw-0123456789ab"), name, "stable");
        assert_ne!(bridge_name("dw-0123456789ab-web"), name);
        for not in [
            "docker0",
            "dw",
            "dw0123456789a",
            "dw0123456789abc",
            "dw0123456789aB",
            "dw-123456789ab",
        ] {
            assert!(!is_bridge_name(not), "{not}");
        }
        assert!(matches!(fence("eth0"), Err(FirewallError::NotABridge(_))));
    }
}
