//! The docker-like verbs that are one or a few calls and print a result,
//! printed as docker prints them.

use clap::Subcommand;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::Version;

use crate::error::{Context, Outcome};

mod build;
mod commit;
pub(crate) mod containers;
mod cp;
mod events;
pub(crate) mod fan_out;
pub(crate) mod format;
mod fs;
mod images;
mod info;
pub(crate) mod listing;
mod networks;
pub(crate) mod out;
mod port_forward;
mod stats;
mod template;
mod times;
mod volumes;

use out::Verdict;

/// Verbs that query or change the engine.
#[derive(Subcommand, Debug)]
pub enum Verb {
    /// List containers
    Ps(containers::Ps),
    /// Return low-level information on containers and images
    Inspect(containers::Inspect),
    /// Start one or more stopped containers
    Start(containers::Start),
    /// Stop one or more running containers
    Stop(containers::Stop),
    /// Restart one or more containers
    Restart(containers::Stop),
    /// Kill one or more running containers
    Kill(containers::Kill),
    /// Remove one or more containers
    Rm(containers::Rm),
    /// Block until one or more containers stop, then print their exit codes
    Wait(containers::Wait),
    /// Display the running processes of a container
    Top(containers::Top),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::Stats),
    /// Fetch the logs of a container
    Logs(containers::Logs),
    /// Update configuration (limits, restart policy) of one or more containers
    Update(containers::Update),
    /// Get real time events from the server
    Events(events::Events),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::Cp),
    /// Download an image from a registry
    Pull(images::Pull),
    /// Build an image from a Dockerfile
    Build(build::Build),
    /// Create a new image from a container's changes
    Commit(commit::Commit),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(commit::Tag),
    /// Push an image to a registry
    Push(commit::Push),
    /// Manage images
    #[command(subcommand)]
    Image(commit::Image),
    /// List images
    Images(images::Images),
    /// Remove one or more images
    Rmi(images::Rmi),
    /// Manage networks
    #[command(subcommand)]
    Network(networks::Network),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volumes::Volume),
    /// Show the client's and the engine's versions.
    Version(VersionArgs),
    /// Display system-wide information (admins)
    Info(info::InfoArgs),
    /// A container's files, with nothing needed in its image
    #[command(subcommand)]
    Fs(fs::Fs),
    /// Forward one or more local ports to a container
    PortForward(port_forward::PortForward),
}

/// Show the client's and the engine's versions
#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// Format output using a Go template (`.Client.Version`,
    /// `.Server.Version`, `.Server.APIVersion`, …)
    #[arg(short, long, value_name = "TEMPLATE")]
    format: Option<String>,
}

/// Go's name for this machine's architecture (`amd64`, `arm64`).
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// The containers `verb` names, to be read as `HOST/CONTAINER` (see
/// `host::on_named_host`): every container argument, and `cp`'s
/// `CONTAINER:PATH` sides.
pub fn references(verb: &mut Verb) -> Vec<&mut String> {
    match verb {
        Verb::Inspect(args) => args.names.iter_mut().collect(),
        Verb::Commit(args) => vec![&mut args.container],
        Verb::Start(args) => args.containers.iter_mut().collect(),
        Verb::Stop(args) | Verb::Restart(args) => args.containers.iter_mut().collect(),
        Verb::Kill(args) => args.containers.iter_mut().collect(),
        Verb::Rm(args) => args.containers.iter_mut().collect(),
        Verb::Wait(args) => args.containers.iter_mut().collect(),
        Verb::Update(args) => args.containers.iter_mut().collect(),
        Verb::Top(args) => vec![&mut args.container],
        Verb::Logs(args) => vec![&mut args.container],
        Verb::Stats(args) => args.containers.iter_mut().collect(),
        Verb::Cp(args) => [&mut args.source, &mut args.destination]
            .into_iter()
            .filter(|side| cp::in_container(side))
            .collect(),
        Verb::Network(networks::Network::Connect(args)) => vec![&mut args.container],
        Verb::Network(networks::Network::Disconnect(args)) => vec![&mut args.container],
        Verb::Fs(verb) => fs::references(verb),
        Verb::PortForward(args) => vec![&mut args.container],
        _ => Vec::new(),
    }
}

/// Runs one verb.
pub async fn run(docker: &DockerClient, verb: Verb) -> Outcome {
    out::outcome(match verb {
        Verb::Ps(args) => containers::ps(docker, args).await,
        Verb::Inspect(args) => containers::inspect(docker, args).await,
        Verb::Start(args) => containers::start(docker, args).await,
        Verb::Stop(args) => containers::stop(docker, args).await,
        Verb::Restart(args) => containers::restart(docker, args).await,
        Verb::Kill(args) => containers::kill(docker, args).await,
        Verb::Rm(args) => containers::rm(docker, args).await,
        Verb::Wait(args) => containers::wait(docker, args).await,
        Verb::Top(args) => containers::top(docker, args).await,
        Verb::Stats(args) => stats::stats(docker, args).await,
        Verb::Logs(args) => containers::logs(docker, args).await,
        Verb::Update(args) => containers::update(docker, args).await,
        Verb::Events(args) => events::events(docker, args).await,
        Verb::Cp(args) => cp::cp(docker, args).await,
        Verb::Pull(args) => images::pull(docker, args).await,
        Verb::Build(args) => build::build(docker, args).await,
        Verb::Commit(args) => commit::commit(docker, args).await,
        Verb::Tag(args) => commit::tag(docker, args).await,
        Verb::Push(args) => commit::push(docker, args).await,
        Verb::Image(verb) => commit::image(docker, verb).await,
        Verb::Images(args) => images::images(docker, args).await,
        Verb::Rmi(args) => images::rmi(docker, args).await,
        Verb::Network(verb) => networks::network(docker, verb).await,
        Verb::Volume(verb) => volumes::volume(docker, verb).await,
        Verb::Version(args) => version(docker, args).await,
        Verb::Info(args) => info::info(docker, args).await,
        Verb::Fs(verb) => fs::fs(docker, verb).await,
        Verb::PortForward(args) => port_forward::port_forward(docker, args).await,
    })
}

async fn version(docker: &DockerClient, args: VersionArgs) -> Verdict {
    let format = args
        .format
        .as_deref()
        .map(template::Formatter::inspect)
        .transpose()?;
    let v = docker
        .query(&Version {})
        .await
        .context(|| "ask the engine for its version".into())?;
    if let Some(format) = format {
        // Docker's template fields are its Go struct's (`APIVersion`).
        let data = serde_json::json!({
            "Client": {
                "Platform": {"Name": "dockwire"},
                "Version": env!("CARGO_PKG_VERSION"),
                "Os": std::env::consts::OS,
                "Arch": go_arch(std::env::consts::ARCH),
            },
            "Server": {
                "Platform": {"Name": v.platform.as_ref().map(|p| p.name.clone()).unwrap_or_default()},
                "Version": v.version.clone().unwrap_or_default(),
                "APIVersion": v.api_version.clone().unwrap_or_default(),
                "MinAPIVersion": v.min_api_version.clone().unwrap_or_default(),
                "GitCommit": v.git_commit.clone().unwrap_or_default(),
                "GoVersion": v.go_version.clone().unwrap_or_default(),
                "Os": v.os.clone().unwrap_or_default(),
                "Arch": v.arch.clone().unwrap_or_default(),
                "KernelVersion": v.kernel_version.clone().unwrap_or_default(),
                "Experimental": v.experimental.unwrap_or(false),
                "BuildTime": v.build_time.clone().unwrap_or_default(),
            },
        });
        out::line(format.render(&data)?)?;
        return Ok(0);
    }
    out::line(format!("Client: dockwire {}", env!("CARGO_PKG_VERSION")))?;
    out::line(format!(
        "Server: Docker Engine {} (API {})",
        v.version.unwrap_or_default(),
        v.api_version.unwrap_or_default()
    ))?;
    Ok(0)
}
