//! Where the verbs' calls go: a server at `--host` (QUIC with this user's
//! identity and the server's pinned fingerprint, or a Unix socket), or
//! this machine's engine served in-process.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use dockwire_core::Limits;
use dockwire_docker::fleet::{Dial, Fleet, FleetError, Sleep};
use dockwire_docker::{DockerClient, DockerService};
use dockwire_service::Runtime;
use dockwire_service::quic::{
    self, Fingerprint, QuicConnect, QuicOptions, TrustCheck, pinned_client_config, refused_by_peer,
};
use dockwire_tokio::Tokio;

use crate::Global;
use crate::error::Failure;
use crate::serve::DEFAULT_PORT;
use crate::state::StateDir;

/// The client of a verb, and what is needed to explain its failures.
pub struct Connected {
    /// The typed client.
    pub docker: DockerClient,
    /// The in-process service, if there is no server.
    pub embedded: Option<DockerService>,
    /// The QUIC connection, if that is the transport.
    quic: Option<quic::quinn::Connection>,
    /// This client's fingerprint (for the "not authorized" message).
    me: Option<Fingerprint>,
}

impl Connected {
    /// Lets the in-process service finish cleaning up after cancelled
    /// calls (a failed `run --rm`'s container) before the process exits.
    pub async fn settle(&self) {
        if let Some(service) = &self.embedded {
            if !service.settle(SETTLE).await {
                tracing::warn!("cleanups still running after {SETTLE:?}; exiting anyway");
            }
        }
    }

    /// `failure`, explained when the server closed the connection because
    /// it does not trust this client (a TLS 1.3 client finishes its
    /// handshake before the server judges it, so this shows on a call).
    pub fn explain(&self, mut failure: Failure) -> Failure {
        let (Some(connection), Some(me)) = (&self.quic, &self.me) else {
            return failure;
        };
        if connection
            .close_reason()
            .is_some_and(|e| refused_by_peer(&e))
        {
            failure.why = format!(
                "the server does not trust this client; on the server, run \
                 `dockwire trust add {me} --name NAME` (this client's fingerprint)"
            );
            failure.code = Some("FORBIDDEN".into());
        }
        failure
    }
}

/// How long an exiting process waits for its in-process cleanups.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(15);

/// Where a verb's calls go: a context's name and the server it names
/// (none: this machine's engine, in-process) with the fingerprint to
/// insist on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The context's name (`default` for `--host` or DOCKWIRE_HOST, as
    /// docker names them).
    pub name: String,
    /// `quic://…` or `unix://…`; `None`: in-process.
    pub host: Option<String>,
    /// The fingerprint to insist on.
    pub fingerprint: Option<String>,
}

/// The hosts `global` names, as docker picks its context: `--context`
/// (several, comma-separated), else `--host`, else DOCKWIRE_HOST, else
/// DOCKWIRE_CONTEXT, else the current context. `--context` with `--host`
/// is refused.
pub fn targets(global: &Global) -> Result<Vec<Target>, Failure> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let host = |host: String| Target {
        name: crate::contexts::DEFAULT.to_owned(),
        host: Some(host),
        fingerprint: global.server_fingerprint.clone(),
    };
    if global.all_contexts {
        let state = StateDir::open(global.state_dir.as_deref())?;
        let made: Vec<Target> = state
            .contexts()
            .list()?
            .into_iter()
            .filter(|c| c.name != crate::contexts::DEFAULT)
            .map(|c| Target {
                name: c.name,
                host: Some(c.host),
                fingerprint: global.server_fingerprint.clone().or(c.server_fingerprint),
            })
            .collect();
        if made.is_empty() {
            return Err(Failure::local(
                "--all-contexts",
                "no context was made (`dockwire context create`)",
            ));
        }
        return Ok(made);
    }
    let named = match (&global.context, &global.host) {
        (Some(_), Some(_)) => {
            return Err(Failure::local(
                "choose the host",
                "conflicting options: either specify --host or --context, not both",
            ));
        }
        (Some(names), None) => names.clone(),
        (None, Some(given)) => return Ok(vec![host(given.clone())]),
        (None, None) => match (from_env("DOCKWIRE_HOST"), from_env("DOCKWIRE_CONTEXT")) {
            (Some(given), _) => return Ok(vec![host(given)]),
            (None, Some(names)) => names,
            // No state directory yet: no context chosen.
            (None, None) => match StateDir::existing(global.state_dir.as_deref()) {
                Some(state) => state.contexts().current()?,
                None => crate::contexts::DEFAULT.to_owned(),
            },
        },
    };
    let contexts = match StateDir::existing(global.state_dir.as_deref()) {
        Some(state) => state.contexts(),
        None if named == crate::contexts::DEFAULT => {
            return Ok(vec![Target {
                name: named,
                host: None,
                fingerprint: None,
            }]);
        }
        None => StateDir::open(global.state_dir.as_deref())?.contexts(),
    };
    let mut targets: Vec<Target> = Vec::new();
    for name in named.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if targets.iter().any(|t| t.name == name) {
            continue;
        }
        let context = contexts.must_get(name)?;
        targets.push(Target {
            name: context.name,
            host: Some(context.host).filter(|h| !h.is_empty()),
            fingerprint: global
                .server_fingerprint
                .clone()
                .or(context.server_fingerprint),
        });
    }
    if targets.is_empty() {
        return Err(Failure::local(
            "choose the host",
            "--context names no context",
        ));
    }
    Ok(targets)
}

/// A fleet of `targets`, each dialled on first use as [`connect_to`]
/// does, each call within the fan-out's timeout.
pub fn fleet(global: &Global, targets: &[Target]) -> Fleet {
    let sleep: Sleep = Arc::new(|pause| Box::pin(tokio::time::sleep(pause)));
    let mut fleet = Fleet::new(sleep, crate::verbs::fan_out::TIMEOUT);
    for target in targets {
        let name = target.name.clone();
        let (global, target) = (global.clone(), target.clone());
        let dial: Dial = Arc::new(move || {
            let (global, target) = (global.clone(), target.clone());
            Box::pin(async move {
                connect_to(&global, &target)
                    .await
                    .map(|connected| connected.docker)
                    .map_err(|failure| FleetError::Connect(failure.why))
            })
        });
        fleet.add(name, dial);
    }
    fleet
}

/// Reads `references` as `HOST/CONTAINER`: each one whose part before the
/// first `/` names a context (a container's name has no `/`) loses it,
/// and `global` then names that context. References to several hosts, or
/// to another host than `--context` or `--host` names, are refused.
/// Nothing changes when none names a host.
pub fn on_named_host(global: &mut Global, references: Vec<&mut String>) -> Result<(), Failure> {
    let Some(state) = StateDir::existing(global.state_dir.as_deref()) else {
        return Ok(());
    };
    let contexts = state.contexts();
    let mut named: Option<String> = None;
    for reference in references {
        let Some((host, rest)) = reference.split_once('/') else {
            continue;
        };
        if host.is_empty() || host.starts_with('.') || contexts.get(host).ok().flatten().is_none() {
            continue;
        }
        match &named {
            Some(other) if other != host => {
                return Err(Failure::local(
                    "choose the host",
                    format!(
                        "containers on several hosts ({other}, {host}): name one host per command"
                    ),
                ));
            }
            _ => named = Some(host.to_owned()),
        }
        *reference = rest.to_owned();
    }
    let Some(host) = named else {
        return Ok(());
    };
    if global.host.is_some() || global.context.as_deref().is_some_and(|c| c != host) {
        return Err(Failure::local(
            "choose the host",
            format!("{host}/… names another host than --host or --context"),
        ));
    }
    global.context = Some(host);
    Ok(())
}

/// The one host `global` names; several are refused (only verbs that list
/// or watch take several).
pub fn target(global: &Global) -> Result<Target, Failure> {
    let mut targets = targets(global)?;
    match targets.len() {
        1 => Ok(targets.remove(0)),
        _ => Err(Failure::local(
            "choose the host",
            "this verb acts on one host: give --context one name",
        )),
    }
}

/// A client for the host `global` names (see [`targets`]).
pub async fn connect(global: &Global) -> Result<Connected, Failure> {
    connect_to(global, &target(global)?).await
}

/// A client for `target`; without a host, the engine at `DOCKER_HOST`
/// (or the local socket) served in this process over an in-memory stream.
pub async fn connect_to(global: &Global, target: &Target) -> Result<Connected, Failure> {
    let Some(host) = target.host.as_deref().filter(|h| !h.is_empty()) else {
        let service = DockerService::from_env();
        let client = Tokio::current().duplex_client(Arc::new(service.clone()), Limits::default());
        return Ok(Connected {
            docker: DockerClient::new(client),
            embedded: Some(service),
            quic: None,
            me: None,
        });
    };
    if let Some(path) = host.strip_prefix("unix://") {
        let tokio = Tokio::current();
        let client = tokio.client(tokio.dial_unix(path.into()), Limits::default());
        return Ok(Connected {
            docker: DockerClient::new(client),
            embedded: None,
            quic: None,
            me: None,
        });
    }
    if let Some(server) = host.strip_prefix("quic://") {
        return connect_quic(global, server, target.fingerprint.as_deref()).await;
    }
    Err(Failure::local(
        format!("connect to {host}"),
        "a host is quic://HOST[:PORT] or unix://PATH",
    ))
}

/// What the pin saw during the handshake.
#[derive(Default)]
struct Seen {
    fingerprint: Option<Fingerprint>,
}

async fn connect_quic(
    global: &Global,
    server: &str,
    fingerprint: Option<&str>,
) -> Result<Connected, Failure> {
    let what = || format!("connect to quic://{server}");
    let server = with_port(server);
    let state = StateDir::open(global.state_dir.as_deref())?;
    let identity = state.identity()?;
    let known = state.known_servers();
    // What to insist on: the fingerprint given, else the one remembered.
    let expected = match fingerprint {
        Some(given) => Some(
            Fingerprint::from_str(given)
                .map_err(|e| Failure::local("read the server's fingerprint", e))?,
        ),
        None => known.get(&server)?,
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let pin: TrustCheck = {
        let seen = seen.clone();
        Arc::new(move |fingerprint: &Fingerprint| {
            seen.lock().unwrap_or_else(|p| p.into_inner()).fingerprint = Some(*fingerprint);
            expected.is_none_or(|e| e == *fingerprint)
        })
    };
    let options = QuicOptions::default().with_congestion(global.congestion.into());
    let config =
        pinned_client_config(&identity, pin, &options).map_err(|e| Failure::local(what(), e))?;
    let addr = resolve(&server)
        .await
        .map_err(|e| Failure::local(what(), e))?;
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let tokio = Tokio::current();
    let mut endpoint = tokio
        .quic_endpoint(local, None)
        .map_err(|e| Failure::local(what(), e))?;
    endpoint.set_default_client_config(config);
    let name = server.rsplit_once(':').map_or("dockwire", |(h, _)| h);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let name = if name.parse::<std::net::IpAddr>().is_ok() {
        "dockwire"
    } else {
        name
    };
    let connected = QuicConnect::connect(&endpoint, addr, name).await;
    let got = seen.lock().unwrap_or_else(|p| p.into_inner()).fingerprint;
    let connection = match connected {
        Ok(c) => c,
        Err(e) => {
            if let (Some(expected), Some(got)) = (expected, got) {
                if expected != got {
                    return Err(changed(
                        &server,
                        expected,
                        got,
                        &state,
                        fingerprint.is_some(),
                    ));
                }
            }
            return Err(Failure::local(what(), e));
        }
    };
    if expected.is_none() {
        if let Some(got) = got {
            known.remember(&server, got)?;
            eprintln!(
                "dockwire: trusting {server} on first use: its fingerprint is {got} \
                 (remembered in {}; check it against `dockwire serve`'s output)",
                known.path().display()
            );
        }
    }
    let quic_connection = connection.connection().clone();
    let client = tokio.client(Arc::new(connection), Limits::default());
    Ok(Connected {
        docker: DockerClient::new(client),
        embedded: None,
        quic: Some(quic_connection),
        me: Some(identity.fingerprint()),
    })
}

/// The loud refusal when a server's fingerprint is not the pinned one.
fn changed(
    server: &str,
    expected: Fingerprint,
    got: Fingerprint,
    state: &StateDir,
    given: bool,
) -> Failure {
    let how = match given {
        true => "the fingerprint given (--server-fingerprint or the context's)".to_owned(),
        false => format!(
            "the one remembered in {}",
            state.known_servers().path().display()
        ),
    };
    Failure::local(
        format!("connect to quic://{server}"),
        format!(
            "REFUSED: THE SERVER'S IDENTITY IS NOT THE ONE PINNED. It presented \
             {got}, not {expected} ({how}). Someone may be impersonating it, or \
             it was given a new identity. Only if you know it was, remove its line \
             from known-servers (or pass --server-fingerprint {got})"
        ),
    )
    .with_code("IDENTITY_CHANGED")
}

/// `HOST:PORT`, with the default port when none is given.
fn with_port(server: &str) -> String {
    let has_port = match server.rsplit_once(':') {
        // `[::1]:7447` or `host:7447`, but not a bare IPv6 address.
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    match has_port {
        true => server.to_owned(),
        false if server.contains(':') && !server.starts_with('[') => {
            format!("[{server}]:{DEFAULT_PORT}")
        }
        false => format!("{server}:{DEFAULT_PORT}"),
    }
}

async fn resolve(server: &str) -> std::io::Result<SocketAddr> {
    tokio::net::lookup_host(server)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_without_a_port_gets_the_default_one() {
        assert_eq!(with_port("engine"), "engine:7447");
        assert_eq!(with_port("engine:9000"), "engine:9000");
        assert_eq!(with_port("127.0.0.1"), "127.0.0.1:7447");
        assert_eq!(with_port("[::1]:9000"), "[::1]:9000");
        assert_eq!(with_port("::1"), "[::1]:7447");
        assert_eq!(with_port("[::1]"), "[::1]:7447");
    }
}
