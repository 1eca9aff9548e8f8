//! `run --place` and `create --place`: one host of several (`--context
//! a,b,c`, `--all-contexts`) chosen for a new container from the figures
//! each server reports (`system/resources`), through the library's
//! [`Fleet`](dockwire_docker::fleet::Fleet). The container is made on the
//! best host; a host that fails before the container exists (it cannot be
//! reached, its engine does not answer) is skipped for the next; after
//! the container is made nothing is retried.

use std::collections::BTreeMap;
use std::future::Future;

use dockwire_docker::DockerClient;
use dockwire_docker::fleet::{FleetError, Placement, Wants};
use dockwire_service::ClientError;

use crate::Global;
use crate::error::Failure;
use crate::host;

/// How to choose the host.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// The host with the most memory available (then the lowest load)
    LeastLoaded,
    /// The host running the fewest containers (a user's own, for a user)
    Spread,
    /// The first host, in --context's order, that answers
    FirstHealthy,
}

/// The placement flags of `run` and `create`.
#[derive(clap::Args, Debug, Default)]
pub struct PlaceArgs {
    /// Choose the host among --context's (or --all-contexts): least-loaded, spread, first-healthy
    #[arg(long, value_enum, value_name = "STRATEGY")]
    place: Option<Strategy>,
    /// With --place: only hosts whose server has this label (KEY=VALUE, `serve --label`), or that have the image (`image`)
    #[arg(
        long = "constraint",
        value_name = "KEY=VALUE|image",
        requires = "place"
    )]
    constraints: Vec<String>,
}

impl PlaceArgs {
    /// Whether a host is to be chosen.
    pub fn placed(&self) -> bool {
        self.place.is_some()
    }
}

/// Runs `attempt` (making the container) on the best host for `image`
/// that `place` ranks, and on the next when it fails before the container
/// exists: the chosen host, its client and what `attempt` gave. The host
/// is said on stderr.
pub async fn on_placed_host<T, F, Fut>(
    global: &Global,
    place: &PlaceArgs,
    image: &str,
    attempt: F,
) -> Result<(String, DockerClient, T), Failure>
where
    F: Fn(DockerClient) -> Fut,
    Fut: Future<Output = Result<Result<T, ClientError>, Failure>>,
{
    let what = || format!("place {image}");
    let strategy = match place.place {
        Some(Strategy::LeastLoaded) | None => Placement::LeastLoaded,
        Some(Strategy::Spread) => Placement::Spread,
        Some(Strategy::FirstHealthy) => Placement::FirstHealthy,
    };
    let wants = wants(place, image)?;
    let fleet = host::fleet(global, &host::targets(global)?);
    let ranked = fleet
        .place(strategy, &wants)
        .await
        .map_err(|e| Failure::local(what(), e))?;
    let mut skipped = Vec::new();
    for name in ranked {
        let tried = match fleet.client_of(&name).await {
            Ok((name, client)) => match attempt(client.clone()).await? {
                Ok(made) => {
                    eprintln!("dockwire: placed on {name}");
                    return Ok((name, client, made));
                }
                Err(e) => FleetError::Call(e),
            },
            Err(e) => e,
        };
        if !tried.before_work() {
            return Err(Failure::local(format!("{} on {name}", what()), tried));
        }
        skipped.push(format!("{name}: {tried}"));
    }
    Err(Failure::local(
        what(),
        format!("every host failed: {}", skipped.join("; ")),
    ))
}

/// What `place`'s constraints ask of a host.
fn wants(place: &PlaceArgs, image: &str) -> Result<Wants, Failure> {
    let mut wants = Wants::default();
    let mut labels = BTreeMap::new();
    for constraint in &place.constraints {
        match constraint.split_once('=') {
            _ if constraint == "image" => wants.image = Some(image.to_owned()),
            Some((key, value)) if !key.is_empty() => {
                labels.insert(key.to_owned(), value.to_owned());
            }
            _ => {
                return Err(Failure::local(
                    format!("--constraint {constraint}"),
                    "expected KEY=VALUE (a server's label) or image",
                ));
            }
        }
    }
    wants.labels = labels;
    Ok(wants)
}
