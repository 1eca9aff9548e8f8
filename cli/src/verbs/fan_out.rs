//! The verbs that list or watch, on several hosts at once (`--context
//! a,b,c`, `--all-contexts`): each host is asked concurrently through a
//! [`Fleet`], each within [`TIMEOUT`]; rows (and `-q`'s ids, as
//! `HOST/ID`) name their host; a host that fails is reported once on
//! stderr and the others are shown; the exit status is 1 when one failed.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use dockwire_docker::DockerClient;
use dockwire_docker::fleet::Fleet;
use dockwire_service::ClientError;

use super::listing::Listing;
use super::out::{self, Stop, Verdict};
use super::{Verb, containers, events, images, networks, stats, volumes};
use crate::error::Failure;

/// How long each host has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How often `stats` across hosts samples them again.
const RESAMPLE: Duration = Duration::from_secs(2);

/// Whether `verb` may run on several hosts at once.
pub fn fans_out(verb: &Verb) -> bool {
    match verb {
        Verb::Ps(_) | Verb::Images(_) | Verb::Events(_) | Verb::Stats(_) => true,
        Verb::Network(verb) => networks::is_ls(verb),
        Verb::Volume(verb) => volumes::is_ls(verb),
        _ => false,
    }
}

/// Runs `verb` (one that [`fans_out`]) on every host of `fleet`.
pub async fn run(fleet: &Fleet, verb: Verb) -> Verdict {
    let mut reported = BTreeSet::new();
    match verb {
        Verb::Ps(args) => {
            let args = &args;
            listed(fleet, &mut reported, |host, c| async move {
                containers::list(&c, args, Some(&host)).await
            })
            .await
        }
        Verb::Images(args) => {
            let args = &args;
            listed(fleet, &mut reported, |host, c| async move {
                images::list(&c, args, Some(&host)).await
            })
            .await
        }
        Verb::Network(verb) => {
            let args = &networks::ls_args(verb).ok_or_else(one_host)?;
            listed(fleet, &mut reported, |host, c| async move {
                networks::list(&c, args, Some(&host)).await
            })
            .await
        }
        Verb::Volume(verb) => {
            let args = &volumes::ls_args(verb).ok_or_else(one_host)?;
            listed(fleet, &mut reported, |host, c| async move {
                volumes::list(&c, args, Some(&host)).await
            })
            .await
        }
        Verb::Events(args) => events::on_fleet(fleet, args).await,
        Verb::Stats(args) => {
            let sample = |_: String, c: DockerClient| {
                let args = &args;
                async move { stats::sampled(&c, args).await.map(|(listing, _)| listing) }
            };
            if !stats::streams(&args) {
                return listed(fleet, &mut reported, sample).await;
            }
            // Followed: sampled again and again, each host's failure
            // reported once.
            loop {
                let terminal = out::stdout_is_terminal();
                let listing = gather(fleet, &mut reported, sample).await?;
                if terminal {
                    // Docker's redraw: clear the screen, home the cursor.
                    out::stdout(b"\x1b[2J\x1b[H")?;
                }
                listing.print()?;
                futures_timer(RESAMPLE).await;
            }
        }
        _ => Err(one_host()),
    }
}

fn one_host() -> Stop {
    Stop::Failed(Failure::local(
        "choose the host",
        "this verb acts on one host: give --context one name",
    ))
}

/// Each host's listing, merged and printed; 1 when a host failed.
async fn listed<F, Fut>(fleet: &Fleet, reported: &mut BTreeSet<String>, list: F) -> Verdict
where
    F: Fn(String, DockerClient) -> Fut,
    Fut: Future<Output = Result<Listing, Stop>>,
{
    let before = reported.len();
    gather(fleet, reported, list).await?.print()?;
    Ok(i32::from(reported.len() > before))
}

/// Each host's listing, merged; a host that failed is reported on stderr
/// the first time (and named in `reported`).
async fn gather<F, Fut>(
    fleet: &Fleet,
    reported: &mut BTreeSet<String>,
    list: F,
) -> Result<Listing, Stop>
where
    F: Fn(String, DockerClient) -> Fut,
    Fut: Future<Output = Result<Listing, Stop>>,
{
    let answers = fleet
        .each(|host, client| {
            let listed = list(host, client);
            async move { Ok::<_, ClientError>(listed.await) }
        })
        .await;
    let mut listings = Vec::new();
    for (host, answer) in answers {
        let failure = match answer {
            Ok(Ok(listing)) => {
                listings.push((host, listing));
                continue;
            }
            Ok(Err(Stop::Closed)) => return Err(Stop::Closed),
            Ok(Err(Stop::Failed(failure))) => failure,
            Err(e) => Failure::local("answer", e),
        };
        if reported.insert(host.clone()) {
            let mut failure = failure;
            failure.what = format!("host {host}: {}", failure.what);
            out::report(&failure);
        }
    }
    Ok(Listing::merged(listings))
}

/// Waits `pause` (tokio's timer: the CLI runs on tokio).
async fn futures_timer(pause: Duration) {
    tokio::time::sleep(pause).await;
}
