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
//! process tree is killed (when the server shares the engine's host, see
//! [`ExecSignals`]), and a cancelled `run` kills its container, and
//! removes it when `autoRemove` was asked.

pub mod access;
pub mod catalog;
mod client;
mod error;
mod journal;
mod service;
mod session;
mod signal;

pub use access::{Role, Roles};
pub use client::{DockerClient, Items};
pub use service::{Config, DockerService, ExecSignals};
