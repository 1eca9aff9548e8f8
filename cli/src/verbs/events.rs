//! `events`: the engine's events, one line each, as docker prints them.

use clap::Args;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::Events as EventsInput;
use dockwire_docker::catalog::models::EventMessage;
use futures::StreamExt;

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
