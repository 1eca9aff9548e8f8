//! The host's packet filter rules that keep users' containers off the
//! host and off every other bridge, for each user bridge and IP family:
//!
//! - in `filter`'s `INPUT`, a rule that rejects every new connection from
//!   the bridge to any address of the host (its gateway address on the
//!   bridge and all the others), while replies to connections the host
//!   opened still pass;
//! - in `mangle`'s `FORWARD`, a rule that drops every new connection
//!   routed into the bridge from anywhere else (another user's bridge,
//!   the default bridge, the uplink), and rules that drop whatever the
//!   bridge routes to the engine's other bridges (Docker's `docker0` and
//!   `br-…`, Podman's `podman…` and `cni-podman…`).
//!
//! Docker's own isolation between its networks lives in `filter`'s
//! `FORWARD`, and Docker 20.10 deletes and re-inserts those rules as
//! networks come and go: in that gap traffic between bridges passes, and
//! a user can make and remove networks at will. `mangle` is passed before
//! `filter` and Docker never writes it, so these rules hold whatever
//! `filter`'s `FORWARD` says at the moment (an operator's `ACCEPT`
//! included).
//!
//! A user network's bridge is named `dw` + 12 hex digits ([`bridge_name`]),
//! so that its rules can be found, checked and removed by name. Rules live
//! as long as their network, not as long as a server: they are installed
//! before the network is made and again (idempotently) before each user
//! container joins it, and removed with the network. Two servers on one
//! engine therefore never remove each other's rules: a network's rules go
//! only when the network goes.
//!
//! The rules are written with the `iptables` and `ip6tables` commands, so
//! they work with either of their backends (nf_tables or legacy).

use std::process::Command;
use std::sync::Mutex;

use ring::digest;

/// The comment on every rule of dockwire's: how its rules are found.
const COMMENT: &str = "dockwire-user-network";

/// The engine's bridges besides users', as `iptables` wildcards:
/// Docker's default bridge and its networks' (`br-` and 12 hex digits),
/// and Podman's (`podman0`, `podman1`, … with netavark; `cni-podman0`, …
/// with CNI).
const ENGINE_BRIDGES: [&str; 4] = ["docker0", "br-+", "podman+", "cni-podman+"];

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
pub fn bridge_name(network: &str) -> String {
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
        for rule in rules(bridge) {
            if !has_rule(tool, &rule)? {
                // First in the chain: no rule of the host's can accept
                // the traffic before this one refuses it.
                run(tool, &rule.args("-I"))?;
            }
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
        for rule in rules(bridge) {
            while has_rule(tool, &rule)? {
                run(tool, &rule.args("-D"))?;
            }
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

/// One rule: where it goes, what it matches, what it does.
#[derive(Debug, PartialEq, Eq)]
struct Rule {
    table: &'static str,
    chain: &'static str,
    /// The match and target, after the chain.
    spec: Vec<String>,
}

impl Rule {
    fn new(table: &'static str, chain: &'static str, spec: &[&str]) -> Rule {
        let mut spec: Vec<String> = spec.iter().map(|s| (*s).to_owned()).collect();
        let target = spec.split_off(spec.len() - 2);
        spec.extend(["-m", "comment", "--comment", COMMENT].map(str::to_owned));
        spec.extend(target);
        Rule { table, chain, spec }
    }

    /// The command's arguments that apply `op` (`-C`, `-D`; `-I`, at the
    /// top of the chain) to this rule.
    fn args(&self, op: &'static str) -> Vec<&str> {
        let mut args = vec!["-w", "-t", self.table, op, self.chain];
        if op == "-I" {
            args.push("1");
        }
        args.extend(self.spec.iter().map(String::as_str));
        args
    }
}

/// `bridge`'s rules (see the module's documentation).
fn rules(bridge: &str) -> Vec<Rule> {
    let not_a_reply = ["-m", "conntrack", "!", "--ctstate", "ESTABLISHED,RELATED"];
    let mut into_host = vec!["-i", bridge];
    into_host.extend(not_a_reply);
    into_host.extend(["-j", "REJECT"]);
    let mut into_bridge = vec!["-o", bridge, "!", "-i", bridge];
    into_bridge.extend(not_a_reply);
    into_bridge.extend(["-j", "DROP"]);
    let mut rules = vec![
        Rule::new("filter", "INPUT", &into_host),
        Rule::new("mangle", "FORWARD", &into_bridge),
    ];
    for other in ENGINE_BRIDGES {
        rules.push(Rule::new(
            "mangle",
            "FORWARD",
            &["-i", bridge, "-o", other, "-j", "DROP"],
        ));
    }
    rules
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

/// Whether `tool` has `rule`: `-C` exits 1 when it has not.
fn has_rule(tool: &'static str, rule: &Rule) -> Result<bool, FirewallError> {
    let args = rule.args("-C");
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

    #[test]
    fn a_bridge_is_fenced_off_the_host_and_every_other_bridge_by_comment() {
        let bridge = bridge_name("dw-0123456789ab");
        let written: Vec<String> = rules(&bridge)
            .iter()
            .map(|r| r.args("-I").join(" "))
            .collect();
        let c = format!("-m comment --comment {COMMENT}");
        assert_eq!(
            written,
            [
                format!(
                    "-w -t filter -I INPUT 1 -i {bridge} -m conntrack ! --ctstate \
                     ESTABLISHED,RELATED {c} -j REJECT"
                ),
                format!(
                    "-w -t mangle -I FORWARD 1 -o {bridge} ! -i {bridge} -m conntrack ! \
                     --ctstate ESTABLISHED,RELATED {c} -j DROP"
                ),
                format!("-w -t mangle -I FORWARD 1 -i {bridge} -o docker0 {c} -j DROP"),
                format!("-w -t mangle -I FORWARD 1 -i {bridge} -o br-+ {c} -j DROP"),
                format!("-w -t mangle -I FORWARD 1 -i {bridge} -o podman+ {c} -j DROP"),
                format!("-w -t mangle -I FORWARD 1 -i {bridge} -o cni-podman+ {c} -j DROP"),
            ]
        );
        assert_eq!(
            rules(&bridge)[0].args("-D").join(" "),
            written[0].replace("-I INPUT 1", "-D INPUT")
        );
    }
}
