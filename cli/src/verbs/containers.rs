//! Container verbs: `ps`, `inspect`, `start`, `stop`, `restart`, `kill`,
//! `rm`, `wait`, `top`, `logs` and `update`.

use std::future::Future;

use clap::{Args, ValueEnum};
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::models::{
    ContainerInspectResponse, ContainerSummary, ImageInspect as ImageInspectResponse,
};
use dockwire_docker::catalog::{
    CONTAINER_NOT_FOUND, ContainerInspect, ContainerKill, ContainerList, ContainerLogs,
    ContainerRef, ContainerRemove, ContainerRestart, ContainerStart, ContainerStop, ContainerTop,
    ContainerUpdate, ContainerWait, IMAGE_NOT_FOUND, ImageInspect, ImageRef, StreamName,
};
use futures::StreamExt;
use serde::Serialize;

use super::format::{self, Table};
use super::listing::Listing;
use super::out::{self, Verdict};
use super::template::Formatter;
use super::times;
use crate::error::{Context, Failure};

/// How many containers `stop`, `start`… act on at once.
const PARALLEL: usize = 8;

// ------------------------------------------------------------------- ps

/// List containers
#[derive(Args, Debug)]
pub struct Ps {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Filter output based on conditions provided (e.g. status=exited,
    /// name=web, label=KEY=VALUE)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, value_name = "N")]
    last: Option<usize>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    latest: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a Go template (`table …` for a table)
    #[arg(long, value_name = "TEMPLATE")]
    format: Option<String>,
}

pub async fn ps(docker: &DockerClient, args: Ps) -> Verdict {
    list(docker, &args, None).await?.print()
}

/// What `ps` shows; `host`, on a fleet, is each object's `.Host` for a
/// `--format` template.
pub async fn list(
    docker: &DockerClient,
    args: &Ps,
    host: Option<&str>,
) -> Result<Listing, out::Stop> {
    let format = args.format.as_deref().map(Formatter::list).transpose()?;
    let last = args.last.or(args.latest.then_some(1));
    let input = ContainerList {
        all: args.all || last.is_some(),
        filters: format::filters(&args.filter)?,
    };
    let mut containers = docker
        .query(&input)
        .await
        .context(|| "list containers".into())?;
    // The engine lists the newest first.
    if let Some(last) = last {
        containers.truncate(last);
    }
    if args.quiet {
        let mut ids = Listing::Ids(Vec::new());
        for c in &containers {
            let id = c.id.as_deref().unwrap_or_default();
            ids.push([if args.no_trunc {
                id
            } else {
                format::short_id(id)
            }]);
        }
        return Ok(ids);
    }
    let now = format::unix_now();
    if let Some(format) = format {
        let items: Vec<_> = containers
            .iter()
            .map(|c| with_host(ps_context(c, !args.no_trunc, now), host))
            .collect();
        return Ok(format.listing(&items, &with_host(PS_TITLES.clone(), host))?);
    }
    let mut table = Listing::table(&[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]);
    for c in &containers {
        table.push(ps_row(c, !args.no_trunc, now));
    }
    Ok(table)
}

/// One line of `ps`, as docker shows it.
fn ps_row(c: &ContainerSummary, trunc: bool, now: i64) -> [String; 7] {
    let id = c.id.as_deref().unwrap_or_default();
    let command = c.command.as_deref().unwrap_or_default();
    let command = if trunc {
        format::ellipsis(command, 20)
    } else {
        command.to_owned()
    };
    [
        if trunc { format::short_id(id) } else { id }.to_owned(),
        ps_image(c, trunc),
        format::go_quote(&command),
        c.created
            .map(|created| format::ago(created, now))
            .unwrap_or_default(),
        c.status.clone().unwrap_or_default(),
        format::ports(c.ports.as_deref().unwrap_or_default()),
        ps_names(c.names.as_deref().unwrap_or_default(), trunc),
    ]
}

/// `ps`'s columns' titles by docker's template fields.
static PS_TITLES: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
    serde_json::json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
        "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
        "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
        "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES",
    })
});

/// A container as `ps --format` sees it: docker's fields, each the text
/// docker shows.
fn ps_context(c: &ContainerSummary, trunc: bool, now: i64) -> serde_json::Value {
    let id = c.id.as_deref().unwrap_or_default();
    let command = c.command.as_deref().unwrap_or_default();
    let command = match trunc {
        true => format::ellipsis(command, 20),
        false => command.to_owned(),
    };
    let mounts = c.mounts.as_deref().unwrap_or_default();
    let mount_names: Vec<String> = mounts
        .iter()
        .map(|m| {
            let name = m.name.clone().filter(|n| !n.is_empty());
            let name = name.or_else(|| m.source.clone()).unwrap_or_default();
            match trunc {
                true => format::ellipsis(&name, 15),
                false => name,
            }
        })
        .collect();
    let local = mounts
        .iter()
        .filter(|m| m.driver.as_deref() == Some("local"))
        .count();
    let mut networks: Vec<&String> = c
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .map(|n| n.keys().collect())
        .unwrap_or_default();
    networks.sort();
    let size = format::human_size(c.size_rw.unwrap_or(0) as f64, 3);
    let size = match c.size_root_fs.unwrap_or(0) {
        0 => size,
        virt => format!("{size} (virtual {})", format::human_size(virt as f64, 3)),
    };
    serde_json::json!({
        "ID": if trunc { format::short_id(id) } else { id },
        "Image": ps_image(c, trunc),
        "Command": format::go_quote(&command),
        "CreatedAt": c.created.map(times::go_time).unwrap_or_default(),
        "RunningFor": c.created.map(|t| format::ago(t, now)).unwrap_or_default(),
        "Ports": format::ports(c.ports.as_deref().unwrap_or_default()),
        "State": c.state.map(|s| s.to_string()).unwrap_or_default(),
        "Status": c.status.clone().unwrap_or_default(),
        "Size": size,
        "Names": ps_names(c.names.as_deref().unwrap_or_default(), trunc),
        "Labels": labels_text(c.labels.as_ref()),
        "Mounts": mount_names.join(","),
        "Networks": networks.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(","),
        "LocalVolumes": local.to_string(),
    })
}

/// Labels as docker's templates show them: `k=v,…` (sorted here; docker's
/// order is a Go map's).
pub(super) fn labels_text(labels: Option<&std::collections::HashMap<String, String>>) -> String {
    let mut pairs: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// `context` with `.Host` when on a fleet.
pub(super) fn with_host(mut context: serde_json::Value, host: Option<&str>) -> serde_json::Value {
    if let (Some(host), Some(map)) = (host, context.as_object_mut()) {
        map.insert("Host".into(), host.into());
    }
    context
}

/// The image as `ps` shows it: an image id cut short, a digest dropped.
fn ps_image(c: &ContainerSummary, trunc: bool) -> String {
    let image = c.image.as_deref().unwrap_or_default();
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.to_owned();
    }
    let image_id = c.image_id.as_deref().unwrap_or_default();
    if format::short_id(image_id) == format::short_id(image) {
        return format::short_id(image).to_owned();
    }
    match image.split_once('@') {
        Some((name, _digest)) => name.to_owned(),
        None => image.to_owned(),
    }
}

/// Names without their leading `/`; cut to the container's own name
/// (not its links' `/other/alias` names) unless `--no-trunc`.
fn ps_names(names: &[String], trunc: bool) -> String {
    let names: Vec<&str> = names
        .iter()
        .map(|n| n.strip_prefix('/').unwrap_or(n))
        .collect();
    if trunc {
        if let Some(own) = names.iter().find(|n| !n.contains('/')) {
            return (*own).to_owned();
        }
    }
    names.join(",")
}

// -------------------------------------------------------------- inspect

/// Return low-level information on containers and images
#[derive(Args, Debug)]
pub struct Inspect {
    /// Only inspect objects of the given type
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    kind: Option<Kind>,
    /// Containers or images, by name or id
    #[arg(required = true, value_name = "NAME|ID")]
    pub(super) names: Vec<String>,
    /// Format output using a Go template
    #[arg(short, long, value_name = "TEMPLATE")]
    format: Option<String>,
}

/// What `inspect` looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A container.
    Container,
    /// An image.
    Image,
}

/// An inspected object, printed in the engine's order of fields.
#[derive(Serialize)]
#[serde(untagged)]
enum Inspected {
    Container(Box<ContainerInspectResponse>),
    Image(Box<ImageInspectResponse>),
}

impl Inspect {
    /// These arguments for images only (`image inspect`).
    pub fn of_images(mut self) -> Inspect {
        self.kind = Some(Kind::Image);
        self
    }
}

pub async fn inspect(docker: &DockerClient, args: Inspect) -> Verdict {
    let format = args.format.as_deref().map(Formatter::inspect).transpose()?;
    let mut found = Vec::new();
    let mut failed = false;
    for name in &args.names {
        match inspect_one(docker, name, args.kind).await {
            Ok(value) => found.push(value),
            Err(failure) => {
                failed = true;
                out::report(&failure);
            }
        }
    }
    print_inspected(&found, format.as_ref(), failed)
}

/// Prints what an `inspect` verb `found`, as `format` says or as docker's
/// indented JSON array; exit 1 when some were not found (`failed`).
pub(super) fn print_inspected(
    found: &[impl serde::Serialize],
    format: Option<&Formatter>,
    failed: bool,
) -> Verdict {
    if let Some(format) = format {
        for object in found {
            let data = serde_json::to_value(object).unwrap_or_default();
            out::line(format.render(&data)?)?;
        }
        return Ok(i32::from(failed));
    }
    let json =
        format::go_json(&found).map_err(|e| Failure::local("print the objects as JSON", e))?;
    out::line(json)?;
    Ok(i32::from(failed))
}

async fn inspect_one(
    docker: &DockerClient,
    name: &str,
    kind: Option<Kind>,
) -> Result<Inspected, Failure> {
    let what = || format!("inspect {name}");
    if kind != Some(Kind::Image) {
        let input = ContainerInspect(ContainerRef::new(name));
        match docker.query(&input).await.context(what) {
            Ok(c) => return Ok(Inspected::Container(Box::new(c))),
            Err(f) if kind.is_none() && f.is(CONTAINER_NOT_FOUND.as_str()) => {}
            Err(f) => return Err(f),
        }
    }
    let input = ImageInspect(ImageRef {
        image: name.to_owned(),
    });
    match docker.query(&input).await.context(what) {
        Ok(i) => Ok(Inspected::Image(Box::new(i))),
        Err(f) if kind.is_none() && f.is(IMAGE_NOT_FOUND.as_str()) => Err(Failure {
            why: format!("No such object: {name}"),
            code: None,
            ..f
        }),
        Err(f) => Err(f),
    }
}

// -------------------------------------------- start, stop, restart, kill, rm

/// Start one or more stopped containers
#[derive(Args, Debug)]
pub struct Start {
    /// Containers, by name or id
    #[arg(required = true, value_name = "CONTAINER")]
    pub(super) containers: Vec<String>,
}

/// Stop one or more running containers
#[derive(Args, Debug)]
pub struct Stop {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    timeout: Option<i32>,
    /// Containers, by name or id
    #[arg(required = true, value_name = "CONTAINER")]
    pub(super) containers: Vec<String>,
}

/// Kill one or more running containers
#[derive(Args, Debug)]
pub struct Kill {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    /// Containers, by name or id
    #[arg(required = true, value_name = "CONTAINER")]
    pub(super) containers: Vec<String>,
}

/// Remove one or more containers
#[derive(Args, Debug)]
pub struct Rm {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
    /// Containers, by name or id
    #[arg(required = true, value_name = "CONTAINER")]
    pub(super) containers: Vec<String>,
}

pub async fn start(docker: &DockerClient, args: Start) -> Verdict {
    each(&args.containers, |id| async move {
        docker
            .query(&ContainerStart(ContainerRef::new(id)))
            .await
            .context(|| format!("start {id}"))
            .map(|_| id.to_owned())
    })
    .await
}

pub async fn stop(docker: &DockerClient, args: Stop) -> Verdict {
    let timeout = args.timeout;
    each(&args.containers, |id| async move {
        let input = ContainerStop {
            id: id.to_owned(),
            timeout,
        };
        docker
            .query(&input)
            .await
            .context(|| format!("stop {id}"))
            .map(|_| id.to_owned())
    })
    .await
}

pub async fn restart(docker: &DockerClient, args: Stop) -> Verdict {
    let timeout = args.timeout;
    each(&args.containers, |id| async move {
        let input = ContainerRestart(ContainerStop {
            id: id.to_owned(),
            timeout,
        });
        docker
            .query(&input)
            .await
            .context(|| format!("restart {id}"))
            .map(|_| id.to_owned())
    })
    .await
}

pub async fn kill(docker: &DockerClient, args: Kill) -> Verdict {
    let signal = &args.signal;
    each(&args.containers, |id| async move {
        let input = ContainerKill {
            id: id.to_owned(),
            signal: Some(signal.clone()),
        };
        docker
            .query(&input)
            .await
            .context(|| format!("kill {id}"))
            .map(|_| id.to_owned())
    })
    .await
}

pub async fn rm(docker: &DockerClient, args: Rm) -> Verdict {
    let (force, volumes) = (args.force, args.volumes);
    each(&args.containers, |id| async move {
        let input = ContainerRemove {
            id: id.to_owned(),
            force,
            volumes,
        };
        docker
            .query(&input)
            .await
            .context(|| format!("remove {id}"))
            .map(|_| id.to_owned())
    })
    .await
}

// ------------------------------------------------------------------ wait

/// Block until one or more containers stop, then print their exit codes
#[derive(Args, Debug)]
pub struct Wait {
    /// Containers, by name or id
    #[arg(required = true, value_name = "CONTAINER")]
    pub(super) containers: Vec<String>,
}

pub async fn wait(docker: &DockerClient, args: Wait) -> Verdict {
    each(&args.containers, |id| async move {
        docker
            .query(&ContainerWait(ContainerRef::new(id)))
            .await
            .context(|| format!("wait for {id}"))
            .map(|exited| exited.exit_code.to_string())
    })
    .await
}

/// Runs `act` on every object, a few at once, and prints what each
/// answered in the order given; a failure is reported and the rest go on.
/// Exit code 1 when any failed.
async fn each<'a, F, Fut>(objects: &'a [String], act: F) -> Verdict
where
    F: Fn(&'a str) -> Fut,
    Fut: Future<Output = Result<String, Failure>> + 'a,
{
    let mut results =
        futures::stream::iter(objects.iter().map(|o| act(o.as_str()))).buffered(PARALLEL);
    let mut failed = false;
    while let Some(result) = results.next().await {
        match result {
            Ok(line) => out::line(line)?,
            Err(failure) => {
                failed = true;
                out::report(&failure);
            }
        }
    }
    Ok(i32::from(failed))
}

// ---------------------------------------------------------------- update

/// Update configuration of one or more containers
#[derive(Args, Debug)]
pub struct Update {
    /// Memory limit (bytes, or 64m, 1g)
    #[arg(short = 'm', long, value_name = "SIZE")]
    memory: Option<String>,
    /// Memory plus swap; -1 for unlimited swap
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,
    /// Process limit (-1 for unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Restart policy (no, always, unless-stopped, on-failure[:N])
    #[arg(long, value_name = "POLICY")]
    restart: Option<String>,
    /// Containers, by name or id
    #[arg(required = true, value_name = "CONTAINER")]
    pub(super) containers: Vec<String>,
}

pub async fn update(docker: &DockerClient, args: Update) -> Verdict {
    let args = &args;
    each(&args.containers, |id| async move {
        let input = ContainerUpdate {
            id: id.to_owned(),
            memory: args.memory.clone(),
            memory_swap: args.memory_swap.clone(),
            cpus: args.cpus,
            pids_limit: args.pids_limit,
            restart: args.restart.clone(),
        };
        docker
            .query(&input)
            .await
            .context(|| format!("update {id}"))
            .map(|_| id.to_owned())
    })
    .await
}

// ------------------------------------------------------------------- top

/// Display the running processes of a container
#[derive(Args, Debug)]
pub struct Top {
    /// The container, by name or id
    pub(super) container: String,
    /// Options for ps (default -ef)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps OPTIONS"
    )]
    ps_options: Vec<String>,
}

pub async fn top(docker: &DockerClient, args: Top) -> Verdict {
    let input = ContainerTop {
        id: args.container.clone(),
        ps_args: (!args.ps_options.is_empty()).then(|| args.ps_options.join(" ")),
    };
    let top = docker
        .query(&input)
        .await
        .context(|| format!("list the processes of {}", args.container))?;
    let mut table = Table::new(format::TOP);
    table.row(top.titles.unwrap_or_default());
    for process in top.processes.unwrap_or_default() {
        table.row(process);
    }
    out::stdout(table.render().as_bytes())?;
    Ok(0)
}

// ------------------------------------------------------------------ logs

/// Fetch the logs of a container
#[derive(Args, Debug)]
pub struct Logs {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative
    /// (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all", value_name = "N")]
    tail: String,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or
    /// relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// The container, by name or id
    pub(super) container: String,
}

pub async fn logs(docker: &DockerClient, args: Logs) -> Verdict {
    let mut input = ContainerLogs::new(args.container.clone());
    input.follow = args.follow;
    input.tail = tail(&args.tail)?;
    input.since = unix_seconds("since", args.since.as_deref())?;
    input.until = unix_seconds("until", args.until.as_deref())?;
    let what = || format!("read the logs of {}", args.container);
    let mut items = docker.subscribe(&input).await.context(what)?;
    while let Some(item) = items.next().await {
        let item = item.context(what)?;
        let Some(data) = item.data.to_bytes() else {
            return Err(out::Stop::Failed(Failure::local(
                what(),
                "the server sent bytes that do not decode",
            )));
        };
        let write = match item.stream {
            StreamName::Stdout => out::stdout,
            StreamName::Stderr => out::stderr,
        };
        if args.timestamps {
            let mut line = Vec::with_capacity(item.timestamp.len() + 1 + data.len());
            line.extend_from_slice(item.timestamp.as_bytes());
            line.push(b' ');
            line.extend_from_slice(&data);
            write(&line)?;
        } else {
            write(&data)?;
        }
    }
    Ok(0)
}

/// `--tail`: `all` (or a negative number, as the engine takes it) or a
/// number of lines.
fn tail(value: &str) -> Result<Option<u64>, Failure> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    match value.parse::<i64>() {
        Ok(n) => Ok(u64::try_from(n).ok()),
        Err(_) => Err(Failure::local(
            format!("--tail {value}"),
            "give a number of lines or \"all\"",
        )),
    }
}

/// A `--since`/`--until` value as Unix seconds.
fn unix_seconds(flag: &str, value: Option<&str>) -> Result<Option<i64>, Failure> {
    let Some(value) = value else {
        return Ok(None);
    };
    times::parse_time(value)
        .map(|t| Some(t.secs))
        .map_err(|e| Failure::local(format!("--{flag} {value}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockwire_docker::catalog::models::PortSummary;

    fn summary() -> ContainerSummary {
        ContainerSummary {
            id: Some("7fa642e6bf0a0b857b9716bce6d620d78907da5b49130bd0d03fb4d9e18f59d7".into()),
            names: Some(vec!["/dwt1".into()]),
            image: Some("dockwire/testbox".into()),
            image_id: Some("sha256:04a773cf701d55".into()),
            command: Some("sh -c 'while true; do echo out; done'".into()),
            created: Some(1000),
            ports: Some(Vec::<PortSummary>::new()),
            status: Some("Up 2 minutes".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_ps_row_is_cut_like_dockers() {
        assert_eq!(
            ps_row(&summary(), true, 1300),
            [
                "7fa642e6bf0a",
                "dockwire/testbox",
                "\"sh -c 'while true; …\"",
                "5 minutes ago",
                "Up 2 minutes",
                "",
                "dwt1",
            ]
        );
        let full = ps_row(&summary(), false, 1300);
        assert_eq!(full[0].len(), 64);
        assert_eq!(full[2], "\"sh -c 'while true; do echo out; done'\"");
    }

    #[test]
    fn ps_shows_image_ids_short_and_drops_digests() {
        let mut c = summary();
        c.image = Some("sha256:04a773cf701d55".into());
        assert_eq!(ps_image(&c, true), "04a773cf701d");
        assert_eq!(ps_image(&c, false), "sha256:04a773cf701d55");
        c.image = Some("busybox@sha256:abcdef".into());
        assert_eq!(ps_image(&c, true), "busybox");
        c.image = Some(String::new());
        assert_eq!(ps_image(&c, true), "<no image>");
    }

    #[test]
    fn ps_names_hide_links_unless_not_truncated() {
        let names = vec!["/web/db".to_owned(), "/db".to_owned()];
        assert_eq!(ps_names(&names, true), "db");
        assert_eq!(ps_names(&names, false), "web/db,db");
    }

    #[test]
    fn tail_takes_all_or_a_count() {
        assert_eq!(tail("all").ok(), Some(None));
        assert_eq!(tail("10").ok(), Some(Some(10)));
        assert_eq!(tail("-1").ok(), Some(None));
        assert!(tail("ten").is_err());
    }
}

/// `run`'s lifetimes: the server removes the container when one has
/// passed.
#[derive(Args, Debug, Default)]
pub struct LifetimeArgs {
    /// Kill and remove the container this long after it starts (90s, 5m,
    /// 1h30m)
    #[arg(long, value_name = "DURATION", value_parser = lifetime)]
    ttl: Option<String>,
    /// Remove the container after this long with no call naming it (exec,
    /// logs, cp, inspect, start, ...)
    #[arg(long, value_name = "DURATION", value_parser = lifetime)]
    idle_timeout: Option<String>,
}

impl LifetimeArgs {
    /// Puts these lifetimes in `spec`.
    pub fn apply(&self, spec: &mut dockwire_docker::catalog::ContainerSpec) {
        spec.ttl = self.ttl.clone();
        spec.idle_timeout = self.idle_timeout.clone();
    }
}

/// A lifetime, checked here as the server checks it, and sent as given.
fn lifetime(value: &str) -> Result<String, String> {
    dockwire_docker::lifetime::parse_lifetime(value).map(|_| value.to_owned())
}
