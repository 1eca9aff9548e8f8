//! `commit`, `tag`, `push` and `image inspect`: images made from a
//! container, named again, sent to their registry, and looked at, as
//! docker's verbs of those names.

use clap::{Args, Subcommand};
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::{ContainerCommit, ImagePush, ImageTag};
use futures::StreamExt;

use super::containers::{self, Inspect};
use super::out::{self, Verdict};
use crate::error::Context;

/// Create a new image from a container's changes
#[derive(Args, Debug)]
pub struct Commit {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pause: bool,
    /// The container
    pub(super) container: String,
    /// The new image's REPOSITORY[:TAG]
    reference: Option<String>,
}

/// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
#[derive(Args, Debug)]
pub struct Tag {
    /// SOURCE_IMAGE[:TAG]
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

/// Push an image to a registry
#[derive(Args, Debug)]
pub struct Push {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// NAME[:TAG]
    image: String,
}

/// Manage images
#[derive(Subcommand, Debug)]
pub enum Image {
    /// Display detailed information on one or more images
    Inspect(Inspect),
}

pub async fn commit(docker: &DockerClient, args: Commit) -> Verdict {
    let input = ContainerCommit {
        id: args.container.clone(),
        reference: args.reference.clone(),
        message: args.message,
        author: args.author,
        changes: args.changes,
        pause: Some(args.pause),
    };
    let made = docker
        .query(&input)
        .await
        .context(|| format!("commit {}", args.container))?;
    out::line(made.id)?;
    Ok(0)
}

pub async fn tag(docker: &DockerClient, args: Tag) -> Verdict {
    let input = ImageTag {
        image: args.source.clone(),
        reference: args.target.clone(),
    };
    docker
        .query(&input)
        .await
        .context(|| format!("tag {} as {}", args.source, args.target))?;
    Ok(0)
}

/// `push`: the engine's status lines as they come (not its byte counts),
/// as docker prints them without a terminal.
pub async fn push(docker: &DockerClient, args: Push) -> Verdict {
    let what = || format!("push {}", args.image);
    let input = ImagePush {
        image: args.image.clone(),
    };
    let mut progress = docker.subscribe(&input).await.context(what)?;
    while let Some(item) = progress.next().await {
        let item = item.context(what)?;
        let counting = item.current.is_some() || item.status.is_empty();
        if !args.quiet && !counting {
            out::line(&item.status)?;
        }
    }
    if args.quiet {
        out::line(&args.image)?;
    }
    Ok(0)
}

pub async fn image(docker: &DockerClient, verb: Image) -> Verdict {
    match verb {
        Image::Inspect(args) => containers::inspect(docker, args.of_images()).await,
    }
}
