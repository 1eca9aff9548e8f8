//! dockwire's Docker operations: the catalog of operation names with their
//! typed inputs and outputs ([`catalog`]), the bollard-backed [`Service`]
//! that serves them ([`DockerService`]), and a typed client over any
//! dockwire [`Client`](dockwire_service::Client) ([`DockerClient`]).
//!
//! Serve the engine at `DOCKER_HOST` (or the local socket) with any
//! shell, and call it:
//!
//! ```no_run
//! use std::sync::Arc;
//! use dockwire_docker::{DockerClient, DockerService};
//! use dockwire_docker::catalog::{ExecInput, ExecItem, Ping};
//! use dockwire_service::Runtime;
//! use futures::StreamExt;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let service = Arc::new(DockerService::from_env());
//! // Any dockwire client works; this one runs the service in-process.
//! let client = dockwire_tokio::Tokio::current().duplex_client(service, Default::default());
//! let docker = DockerClient::new(client);
//! println!("engine API {}", docker.query(&Ping {}).await?.api_version);
//! let mut items = docker.subscribe(&ExecInput::new("web", ["echo", "hi"])).await?;
//! while let Some(item) = items.next().await {
//!     match item? {
//!         ExecItem::Output { data, .. } => print!("{}", String::from_utf8_lossy(&data.to_bytes().unwrap_or_default())),
//!         ExecItem::Exit { exit_code, .. } => println!("exit {exit_code}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! [`Service`]: dockwire_service::Service
//!
//! # Runtimes
//!
//! bollard needs a tokio reactor. Every reply of [`DockerService`] is
//! wrapped in `async_compat::Compat`: under tokio it runs in the caller's
//! runtime; under smol (or any other executor) the handler is still polled
//! by that executor, and only bollard's connection I/O runs on a small
//! tokio runtime of async-compat's own thread.
//!
//! # Cleanup
//!
//! A call that ends early (the client aborts or vanishes) drops its
//! handler, whose guards then clean up on the engine: a cancelled exec's
//! processes are killed (by host pid, or through the engine, see
//! [`ExecSignals`]), and a cancelled `run` kills its container, and
//! removes it when `autoRemove` was asked.

// In the order the dependencies run: each module uses only those above
// it (a unit test checks).

// The catalog's types, and the errors the engine's answers become.
pub mod catalog;
// What differs between the engines served (Docker, Podman).
pub mod dialect;
mod error;

// Sizes as Docker writes them.
pub mod units;

// Ownership only this server can write, and users' own names.
pub mod ownership;

// Signals to exec'd processes: to host pids, or through the engine.
mod exec_signal;
mod signal;

// The host's rules that fence users' bridges off the host.
mod firewall;

// Who may do what, and each role's resource defaults and caps.
pub mod access;
pub mod policy;

// The service's settings, and what follows from them: users' containers
// hardened and sandboxed as their specs ask, their published ports,
// users' registries, the audit trail.
pub mod audit;
mod config;
mod dockerfile;
mod hardening;
mod publish;
mod registry;
mod sandbox;

// Containers' lifetimes (ttl, idle timeout): decided at create, touched
// by calls, enforced by a task of the server's.
pub mod lifetime;

// The runtime a container runs under, and what gVisor changes.
pub mod runtime;

// Detached processes: their output kept at its offsets, and the
// registry of them (the engine handle keeps it).
mod output_buffer;
mod processes;

// Typed handlers made into replies.
mod reply;

// The engine handle, the cleanups that outlive their calls, the exec journal.
mod cleanup;
mod engine;
mod journal;

// A caller's own objects: references resolved, and what a user sees.
mod owned;

// Users' images: whose each is, what a user sees and uses, its names.
mod image_owner;

// Users' own networks, made on first need and fenced off the host.
mod user_network;

// What the handlers share: the create body, and a session's stdio.
mod spec;
mod stdio;
// Log frames made into whole lines, and Podman's followed tail read again.
mod log_lines;

// What the engine answers wrong for a container in gVisor.
mod gvisor;

// A container's files: paths and their errors, its root reached
// directly, or through the engine's archive API.
mod fs_path;

// The root reached directly, then through the engine (which uses the
// former's times).
mod fs_direct;

mod fs_archive;
// Connections made inside a container's network namespace.
mod netns;

// The handlers, one file per concern. Networks and volumes first: what a
// container's create makes or names (`create`) uses them.
mod networks;
mod volumes;

// What a container's create makes and names, for `create` and `run`.
mod create;

// A user's build context: its Dockerfile checked, its size capped.
mod build_context;

mod archive;
mod build;
mod containers;
mod exec;
mod fs;
mod images;
mod run;
mod system;

// Detached processes' operations (after `exec`, whose start they use).
mod process;

mod session;

// TCP connections into containers, on the raw carriage.
mod port_forward;

// Each operation declared once, and the service that routes by it.
pub mod operations;
mod service;

mod client;
// Many servers as one, on the client side.
pub mod fleet;

pub use access::{Role, Roles};
pub use client::{
    DockerClient, Items, OUTPUT_DROPPED, PortStream, SESSION_STDIN_TAIL, SessionControl,
    follow_process, resumable_exec, resume_session,
};
pub use config::{Config, DEFAULT_USER_CAP_DROP, ExecSignals, LifetimePolicy, UserNetwork};
pub use config::{DEFAULT_MAX_PROCESSES, DEFAULT_PROCESS_BUFFER_MAX, DEFAULT_SESSION_GRACE};
pub use dialect::Dialect;
/// The bridge interface of the user network named `network` on the
/// engine (what its host rules name; Podman does not show it).
pub use firewall::bridge_name as user_bridge_name;
pub use ownership::OwnerKey;
pub use policy::{BuildLimits, HostPorts, Limits, Policy, RolePolicy};
pub use service::DockerService;

#[cfg(test)]
mod tests {
    /// Each module's source, by name.
    const SOURCES: &[(&str, &str)] = &[
        ("access", include_str!("access.rs")),
        ("archive", include_str!("archive.rs")),
        ("build", include_str!("build.rs")),
        ("build_context", include_str!("build_context.rs")),
        ("audit", include_str!("audit.rs")),
        ("catalog", include_str!("catalog.rs")),
        ("cleanup", include_str!("cleanup.rs")),
        ("client", include_str!("client.rs")),
        ("config", include_str!("config.rs")),
        ("containers", include_str!("containers.rs")),
        ("create", include_str!("create.rs")),
        ("dockerfile", include_str!("dockerfile.rs")),
        ("dialect", include_str!("dialect.rs")),
        ("engine", include_str!("engine.rs")),
        ("error", include_str!("error.rs")),
        ("exec", include_str!("exec.rs")),
        ("exec_signal", include_str!("exec_signal.rs")),
        ("hardening", include_str!("hardening.rs")),
        ("firewall", include_str!("firewall.rs")),
        ("fleet", include_str!("fleet.rs")),
        ("fs", include_str!("fs.rs")),
        ("fs_archive", include_str!("fs_archive.rs")),
        ("fs_direct", include_str!("fs_direct.rs")),
        ("fs_path", include_str!("fs_path.rs")),
        ("gvisor", include_str!("gvisor.rs")),
        ("image_owner", include_str!("image_owner.rs")),
        ("images", include_str!("images.rs")),
        ("journal", include_str!("journal.rs")),
        ("lifetime", include_str!("lifetime.rs")),
        ("log_lines", include_str!("log_lines.rs")),
        ("networks", include_str!("networks.rs")),
        ("netns", include_str!("netns.rs")),
        ("port_forward", include_str!("port_forward.rs")),
        ("output_buffer", include_str!("output_buffer.rs")),
        ("process", include_str!("process.rs")),
        ("processes", include_str!("processes.rs")),
        ("operations", include_str!("operations.rs")),
        ("owned", include_str!("owned.rs")),
        ("policy", include_str!("policy.rs")),
        ("sandbox", include_str!("sandbox.rs")),
        ("units", include_str!("units.rs")),
        ("ownership", include_str!("ownership.rs")),
        ("publish", include_str!("publish.rs")),
        ("registry", include_str!("registry.rs")),
        ("reply", include_str!("reply.rs")),
        ("run", include_str!("run.rs")),
        ("runtime", include_str!("runtime.rs")),
        ("service", include_str!("service.rs")),
        ("session", include_str!("session.rs")),
        ("signal", include_str!("signal.rs")),
        ("spec", include_str!("spec.rs")),
        ("stdio", include_str!("stdio.rs")),
        ("system", include_str!("system.rs")),
        ("user_network", include_str!("user_network.rs")),
        ("volumes", include_str!("volumes.rs")),
    ];

    /// The modules a source's `use crate::` lines name.
    fn uses(source: &str) -> Vec<String> {
        let mut named = Vec::new();
        for line in source.lines().map(str::trim) {
            let Some(path) = line.strip_prefix("use crate::") else {
                continue;
            };
            match path.strip_prefix('{') {
                Some(list) => named.extend(
                    list.trim_end_matches("};")
                        .split(',')
                        .map(|m| m.trim().split("::").next().unwrap_or_default().to_owned())
                        .filter(|m| !m.is_empty()),
                ),
                None => named.push(path.split([':', ';']).next().unwrap_or_default().to_owned()),
            }
        }
        named
    }

    #[test]
    fn modules_use_only_those_declared_above_them() {
        let lib = include_str!("lib.rs");
        let order: Vec<&str> = lib
            .lines()
            .filter_map(|l| {
                l.strip_prefix("pub mod ")
                    .or_else(|| l.strip_prefix("mod "))
            })
            .map(|l| l.trim_end_matches(';'))
            .filter(|m| !m.contains('{'))
            .collect();
        let mut listed: Vec<&str> = SOURCES.iter().map(|(m, _)| *m).collect();
        let mut declared = order.clone();
        listed.sort_unstable();
        declared.sort_unstable();
        assert_eq!(declared, listed, "every module's source is checked");
        for (at, module) in order.iter().enumerate() {
            let source = SOURCES
                .iter()
                .find_map(|(m, s)| (m == module).then_some(*s))
                .unwrap_or_default();
            for used in uses(source) {
                let above = order[..at].contains(&used.as_str());
                assert!(
                    above,
                    "{module} uses {used}, which is not declared above it"
                );
            }
        }
    }
}
