//! The docker-like verbs that are one or a few calls and print a result.

use clap::Subcommand;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::Version;

use crate::error::{Context, Outcome};

/// Verbs that query or change the engine.
#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Show the client's and the engine's versions.
    Version,
}

/// Runs one verb.
pub async fn run(docker: &DockerClient, verb: Verb) -> Outcome {
    match verb {
        Verb::Version => version(docker).await,
    }
}

async fn version(docker: &DockerClient) -> Outcome {
    println!("Client: dockwire {}", env!("CARGO_PKG_VERSION"));
    let v = docker
        .query(&Version {})
        .await
        .context(|| "ask the engine for its version".into())?;
    println!(
        "Server: Docker Engine {} (API {})",
        v.version.unwrap_or_default(),
        v.api_version.unwrap_or_default()
    );
    Ok(0)
}
