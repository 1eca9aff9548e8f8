//! The docker-like verbs that are one or a few calls and print a result,
//! printed as docker prints them.

use clap::Subcommand;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::Version;

use crate::error::{Context, Outcome};

mod format;
mod out;
mod times;

use out::Verdict;

/// Verbs that query or change the engine.
#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Show the client's and the engine's versions.
    Version,
}

/// Runs one verb.
pub async fn run(docker: &DockerClient, verb: Verb) -> Outcome {
    out::outcome(match verb {
        Verb::Version => version(docker).await,
    })
}

async fn version(docker: &DockerClient) -> Verdict {
    out::line(format!("Client: dockwire {}", env!("CARGO_PKG_VERSION")))?;
    let v = docker
        .query(&Version {})
        .await
        .context(|| "ask the engine for its version".into())?;
    out::line(format!(
        "Server: Docker Engine {} (API {})",
        v.version.unwrap_or_default(),
        v.api_version.unwrap_or_default()
    ))?;
    Ok(0)
}
