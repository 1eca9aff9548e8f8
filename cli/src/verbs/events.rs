//! `events`: the engine's events, one line each, as docker prints them.

use clap::Args;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::Events as EventsInput;
use dockwire_docker::catalog::models::EventMessage;
use std::collections::BTreeSet;

use dockwire_docker::fleet::{Fleet, FleetError};
use futures::StreamExt;
use futures::future::join_all;
use futures::stream::SelectAll;

use super::format;
use super::out::{self, Verdict};
use super::times;
use crate::error::{Context, Failure};

/// Get real time events from the server
#[derive(Args, Debug)]
pub struct Events {
    /// Filter output based on conditions provided (e.g. type=container,
    /// container=web, event=start)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

pub async fn events(docker: &DockerClient, args: Events) -> Verdict {
    let input = EventsInput {
        since: engine_time("since", args.since.as_deref())?,
        until: engine_time("until", args.until.as_deref())?,
        filters: format::filters(&args.filter)?,
    };
    let what = || "follow the engine's events".to_owned();
    let mut events = docker.subscribe(&input).await.context(what)?;
    while let Some(event) = events.next().await {
        out::line(event_line(&event.context(what)?))?;
    }
    Ok(0)
}

/// `events` of every host of `fleet` at once, each line led by its host;
/// a host that cannot be followed (or stops) is reported once on stderr,
/// the others go on. 1 when one failed.
pub async fn on_fleet(fleet: &Fleet, args: Events) -> Verdict {
    let input = EventsInput {
        since: engine_time("since", args.since.as_deref())?,
        until: engine_time("until", args.until.as_deref())?,
        filters: format::filters(&args.filter)?,
    };
    let names = fleet.names();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let subscribed = join_all(names.iter().map(|name| {
        let input = &input;
        async move {
            let (name, client) = fleet.client_of(name).await?;
            let events = client.subscribe(input).await?;
            Ok::<_, FleetError>((name, events))
        }
    }))
    .await;
    let mut failed = false;
    let mut merged = SelectAll::new();
    for (name, subscribed) in names.iter().zip(subscribed) {
        match subscribed {
            Ok((name, events)) => {
                merged.push(events.map(move |event| (name.clone(), event)).boxed());
            }
            Err(e) => {
                failed = true;
                out::report(&Failure::local(
                    format!("host {name}: follow the engine's events"),
                    e,
                ));
            }
        }
    }
    let mut broken = BTreeSet::new();
    while let Some((host, event)) = merged.next().await {
        match event {
            Ok(event) => out::line(format!("{host:width$}  {}", event_line(&event)))?,
            Err(e) => {
                failed = true;
                if broken.insert(host.clone()) {
                    out::report(&Failure::call(
                        format!("host {host}: follow the engine's events"),
                        e,
                    ));
                }
            }
        }
    }
    Ok(i32::from(failed))
}

/// A time as the engine takes it for events: `SECONDS.NANOSECONDS`.
fn engine_time(flag: &str, value: Option<&str>) -> Result<Option<String>, Failure> {
    let Some(value) = value else {
        return Ok(None);
    };
    times::parse_time(value)
        .map(|t| Some(t.to_string()))
        .map_err(|e| Failure::local(format!("--{flag} {value}"), e))
}

/// `TIME TYPE ACTION ID (KEY=VALUE, …)`, the attributes sorted by key.
fn event_line(event: &EventMessage) -> String {
    let mut line = String::new();
    if let Some(nanos) = event.time_nano.filter(|&n| n != 0) {
        line.push_str(&times::format_nanos(nanos));
        line.push(' ');
    } else if let Some(secs) = event.time.filter(|&s| s != 0) {
        line.push_str(&times::format_nanos(secs.saturating_mul(1_000_000_000)));
        line.push(' ');
    }
    let kind = event.typ.map(|t| t.to_string()).unwrap_or_default();
    let actor = event.actor.clone().unwrap_or_default();
    line.push_str(&format!(
        "{kind} {} {}",
        event.action.as_deref().unwrap_or_default(),
        actor.id.as_deref().unwrap_or_default()
    ));
    let mut attributes: Vec<(String, String)> =
        actor.attributes.unwrap_or_default().into_iter().collect();
    if !attributes.is_empty() {
        attributes.sort();
        let attributes: Vec<String> = attributes
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        line.push_str(&format!(" ({})", attributes.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockwire_docker::catalog::models::{EventActor, EventMessageTypeEnum};
    use std::collections::HashMap;

    #[test]
    fn an_event_is_one_line_with_sorted_attributes() {
        let event = EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some("start".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(HashMap::from([
                    ("name".to_owned(), "web".to_owned()),
                    ("image".to_owned(), "dockwire/testbox".to_owned()),
                ])),
            }),
            ..Default::default()
        };
        assert_eq!(
            event_line(&event),
            "container start abc (image=dockwire/testbox, name=web)"
        );
    }
}
