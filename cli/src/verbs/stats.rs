//! `stats`: containers' resource usage, as docker computes and shows it.

use std::collections::HashMap;
use std::time::Duration;

use clap::Args;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::models::{
    ContainerCpuStats, ContainerMemoryStats, ContainerStatsResponse, EventMessage,
};
use dockwire_docker::catalog::{ContainerList, ContainerStats, Events};
use dockwire_service::ClientError;
use futures::StreamExt;
use futures::stream::{AbortHandle, BoxStream, SelectAll};

use super::format::{self, Table};
use super::listing::Listing;
use super::out::{self, Stop, Verdict};
use crate::error::{Context, Failure};

/// How often a streaming display is redrawn, as docker does.
const REDRAW: Duration = Duration::from_millis(500);

/// Display a live stream of container(s) resource usage statistics
#[derive(Args, Debug)]
pub struct Stats {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Containers, by name or id (default: all running containers)
    #[arg(value_name = "CONTAINER")]
    pub(super) containers: Vec<String>,
}

pub async fn stats(docker: &DockerClient, args: Stats) -> Verdict {
    let watch = args.containers.is_empty();
    if args.no_stream {
        let (listing, failed) = sampled(docker, &args).await?;
        listing.print()?;
        return Ok(i32::from(failed));
    }
    let containers = containers(docker, &args).await?;
    Live::new(docker, !args.no_trunc, args.all, watch)
        .run(containers)
        .await
}

/// Whether this asks for a display that follows the containers (not
/// `--no-stream`).
pub fn streams(args: &Stats) -> bool {
    !args.no_stream
}

/// One sample of each container `args` names (each running one, or all,
/// when it names none), as `stats --no-stream` shows them, and whether one
/// failed (reported on stderr).
pub async fn sampled(docker: &DockerClient, args: &Stats) -> Result<(Listing, bool), Stop> {
    let containers = containers(docker, args).await?;
    once(docker, &containers, !args.no_trunc).await
}

/// The containers `args` names; when none, the engine's running ones
/// (all with `-a`).
async fn containers(docker: &DockerClient, args: &Stats) -> Result<Vec<String>, Stop> {
    if !args.containers.is_empty() {
        return Ok(args.containers.clone());
    }
    let input = ContainerList {
        all: args.all,
        filters: HashMap::new(),
    };
    let listed = docker
        .query(&input)
        .await
        .context(|| "list containers".into())?;
    Ok(listed.into_iter().filter_map(|c| c.id).collect())
}

/// One sample of each container, in one table, and whether one failed.
async fn once(
    docker: &DockerClient,
    containers: &[String],
    trunc: bool,
) -> Result<(Listing, bool), Stop> {
    let samples = futures::future::join_all(containers.iter().map(|id| async move {
        let input = ContainerStats {
            id: id.clone(),
            stream: false,
        };
        let what = || format!("read the stats of {id}");
        let mut samples = docker.subscribe(&input).await.context(what)?;
        match samples.next().await {
            Some(sample) => sample.context(what),
            None => Err(Failure::local(what(), "the engine sent no sample")),
        }
    }))
    .await;
    let mut table = Listing::table(&COLUMNS);
    let mut failed = false;
    for sample in samples {
        match sample {
            Ok(sample) => table.push(row(&Entry::from_sample(&sample), trunc)),
            Err(failure) => {
                failed = true;
                out::report(&failure);
            }
        }
    }
    Ok((table, failed))
}

/// A container's samples, tagged with the generation of its row; `None`
/// once its stream has ended.
type Samples = BoxStream<'static, (u64, Option<Result<ContainerStatsResponse, ClientError>>)>;

/// The streaming display: a subscription per container, merged.
struct Live<'a> {
    docker: &'a DockerClient,
    trunc: bool,
    all: bool,
    /// No containers were named: follow the engine's events to add and
    /// drop containers as they start and stop.
    watch: bool,
    terminal: bool,
    rows: Vec<Row>,
    samples: SelectAll<Samples>,
    /// Tells each row's stream apart from an earlier one of the same
    /// container (stopped, then started again).
    generations: u64,
}

/// A container of the display, by the name or id it was added with.
struct Row {
    key: String,
    generation: u64,
    /// Ends the row's stream when the row goes.
    stream: AbortHandle,
    entry: Option<Entry>,
    /// Samples seen: the first of a stream has no previous CPU reading to
    /// measure against, so its CPU % is not shown.
    seen: u64,
    /// Sampled since the last table was printed (without a terminal, a
    /// table is printed once every container has a new sample).
    fresh: bool,
}

impl<'a> Live<'a> {
    fn new(docker: &'a DockerClient, trunc: bool, all: bool, watch: bool) -> Self {
        Live {
            docker,
            trunc,
            all,
            watch,
            terminal: out::stdout_is_terminal(),
            rows: Vec::new(),
            samples: SelectAll::new(),
            generations: 0,
        }
    }

    async fn run(mut self, containers: Vec<String>) -> Verdict {
        for container in containers {
            self.add(container).await?;
        }
        let mut events = if self.watch {
            let mut actions = vec!["start".to_owned(), "die".to_owned()];
            if self.all {
                actions.extend(["create".to_owned(), "destroy".to_owned()]);
            }
            let input = Events {
                filters: HashMap::from([
                    ("type".to_owned(), vec!["container".to_owned()]),
                    ("event".to_owned(), actions),
                ]),
                ..Default::default()
            };
            let events = self
                .docker
                .subscribe(&input)
                .await
                .context(|| "follow the engine's events".into())?;
            Some(events)
        } else {
            None
        };
        if self.terminal {
            // Start from a clear screen, as docker does.
            out::stdout(b"\x1b[2J\x1b[H")?;
        }
        let mut ticker = tokio::time::interval(REDRAW);
        let mut changed = true;
        loop {
            tokio::select! {
                Some((generation, sample)) = self.samples.next(), if !self.samples.is_empty() => {
                    self.update(generation, sample)?;
                    changed = true;
                }
                Some(event) = next_event(&mut events) => {
                    let event = event.context(|| "follow the engine's events".into())?;
                    self.on_event(&event).await?;
                    changed = true;
                }
                _ = ticker.tick() => {
                    if changed && self.draw()? {
                        changed = false;
                    }
                    if !self.watch && self.samples.is_empty() {
                        // Every named container's stream has ended.
                        return Ok(0);
                    }
                }
            }
        }
    }

    async fn add(&mut self, key: String) -> Result<(), Failure> {
        if self.rows.iter().any(|r| r.key == key) {
            return Ok(());
        }
        let input = ContainerStats {
            id: key.clone(),
            stream: true,
        };
        let samples = self
            .docker
            .subscribe(&input)
            .await
            .context(|| format!("read the stats of {key}"))?;
        self.generations += 1;
        let generation = self.generations;
        let (samples, stream) = futures::stream::abortable(samples);
        let end = futures::stream::once(async move { (generation, None) });
        self.samples.push(
            samples
                .map(move |s| (generation, Some(s)))
                .chain(end)
                .boxed(),
        );
        self.rows.push(Row {
            key,
            generation,
            stream,
            entry: None,
            seen: 0,
            fresh: false,
        });
        Ok(())
    }

    fn update(
        &mut self,
        generation: u64,
        sample: Option<Result<ContainerStatsResponse, ClientError>>,
    ) -> Result<(), Failure> {
        let Some(at) = self.rows.iter().position(|r| r.generation == generation) else {
            // The stream of a row that is gone.
            return Ok(());
        };
        match sample {
            Some(Ok(sample)) => {
                if let Some(row) = self.rows.get_mut(at) {
                    row.seen += 1;
                    if row.seen == 1 && !has_previous_cpu(&sample) {
                        // docker would show the container's CPU time over
                        // the host's since boot: wait for the next sample.
                        return Ok(());
                    }
                    row.entry = Some(Entry::from_sample(&sample));
                    row.fresh = true;
                }
            }
            Some(Err(e)) => {
                let key = self.rows.get(at).map(|r| r.key.clone()).unwrap_or_default();
                let failure = Failure::call(format!("read the stats of {key}"), e);
                let never_sampled = self.rows.get(at).is_some_and(|r| r.entry.is_none());
                if never_sampled && !self.watch {
                    // As docker: a named container that cannot be read at
                    // all is an error.
                    return Err(failure);
                }
                self.lost(at);
            }
            None => self.lost(at),
        }
        Ok(())
    }

    /// A container whose stream ended: dropped when following events
    /// (it stopped or went away), shown with `--` otherwise.
    fn lost(&mut self, at: usize) {
        if self.watch {
            self.rows.remove(at);
            return;
        }
        if let Some(row) = self.rows.get_mut(at) {
            let entry = row.entry.get_or_insert_with(Entry::default);
            entry.invalid = true;
            row.fresh = true;
        }
    }

    async fn on_event(&mut self, event: &EventMessage) -> Result<(), Failure> {
        let Some(id) = event.actor.as_ref().and_then(|a| a.id.clone()) else {
            return Ok(());
        };
        match event.action.as_deref() {
            Some("start" | "create") => self.add(id).await,
            Some("die") if !self.all => {
                self.drop_row(&id);
                Ok(())
            }
            Some("destroy") => {
                self.drop_row(&id);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn drop_row(&mut self, key: &str) {
        self.rows.retain(|r| {
            if r.key == key {
                r.stream.abort();
            }
            r.key != key
        });
    }

    /// Draws the table: redrawn in place on a terminal, printed again
    /// otherwise once every container has a new sample. Whether it drew.
    fn draw(&mut self) -> Result<bool, out::Stop> {
        if !self.terminal && !self.rows.iter().all(|r| r.fresh) {
            return Ok(false);
        }
        let mut table = header();
        for r in &mut self.rows {
            r.fresh = false;
            if let Some(entry) = &r.entry {
                table.row(row(entry, self.trunc));
            }
        }
        let text = table.render();
        if !self.terminal {
            out::stdout(text.as_bytes())?;
            return Ok(true);
        }
        // Home, each line cleared to its end, then the rest of the screen:
        // one write, so that the display does not flicker.
        let mut frame = String::from("\x1b[H");
        for line in text.lines() {
            frame.push_str(line);
            frame.push_str("\x1b[K\n");
        }
        frame.push_str("\x1b[J");
        out::stdout(frame.as_bytes())?;
        Ok(true)
    }
}

async fn next_event(
    events: &mut Option<dockwire_docker::Items<EventMessage>>,
) -> Option<Result<EventMessage, ClientError>> {
    match events {
        Some(events) => events.next().await,
        None => futures::future::pending().await,
    }
}

/// The columns of `stats`, as docker's.
const COLUMNS: [&str; 8] = [
    "CONTAINER ID",
    "NAME",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
];

fn header() -> Table {
    Table::list(&COLUMNS)
}

/// What docker computes from a sample.
#[derive(Clone, Debug, Default, PartialEq)]
struct Entry {
    id: String,
    name: String,
    cpu_percent: f64,
    memory: f64,
    memory_limit: f64,
    memory_percent: f64,
    net_rx: f64,
    net_tx: f64,
    block_read: f64,
    block_write: f64,
    pids: u64,
    /// The container's stream failed or ended: shown as `--`.
    invalid: bool,
}

impl Entry {
    fn from_sample(s: &ContainerStatsResponse) -> Self {
        let memory_stats = s.memory_stats.clone().unwrap_or_default();
        let memory = memory_without_cache(&memory_stats);
        let memory_limit = memory_stats.limit.unwrap_or(0) as f64;
        let (mut net_rx, mut net_tx) = (0.0, 0.0);
        for network in s.networks.iter().flat_map(HashMap::values) {
            net_rx += network.rx_bytes.unwrap_or(0) as f64;
            net_tx += network.tx_bytes.unwrap_or(0) as f64;
        }
        let (mut block_read, mut block_write) = (0.0, 0.0);
        let io = s
            .blkio_stats
            .as_ref()
            .and_then(|b| b.io_service_bytes_recursive.as_deref())
            .unwrap_or_default();
        for entry in io {
            let value = entry.value.unwrap_or(0) as f64;
            match entry.op.as_deref().and_then(|op| op.chars().next()) {
                Some('r' | 'R') => block_read += value,
                Some('w' | 'W') => block_write += value,
                _ => {}
            }
        }
        Entry {
            id: s.id.clone().unwrap_or_default(),
            name: s.name.clone().unwrap_or_default(),
            cpu_percent: cpu_percent(s),
            memory,
            memory_limit,
            memory_percent: if memory_limit == 0.0 {
                0.0
            } else {
                memory / memory_limit * 100.0
            },
            net_rx,
            net_tx,
            block_read,
            block_write,
            pids: s.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
            invalid: false,
        }
    }
}

/// Whether a sample carries the previous reading CPU % is measured
/// against (the first of a stream does not).
fn has_previous_cpu(s: &ContainerStatsResponse) -> bool {
    let system = |cpu: &Option<ContainerCpuStats>| {
        cpu.as_ref().and_then(|c| c.system_cpu_usage).unwrap_or(0)
    };
    system(&s.precpu_stats) != 0 || system(&s.cpu_stats) == 0
}

/// docker's CPU %: the container's share of the host's CPU time between
/// the previous sample and this one, times the number of CPUs.
fn cpu_percent(s: &ContainerStatsResponse) -> f64 {
    let total = |cpu: &Option<ContainerCpuStats>| {
        let cpu = cpu.as_ref();
        (
            cpu.and_then(|c| c.cpu_usage.as_ref())
                .and_then(|u| u.total_usage)
                .unwrap_or(0) as f64,
            cpu.and_then(|c| c.system_cpu_usage).unwrap_or(0) as f64,
        )
    };
    let (cpu, system) = total(&s.cpu_stats);
    let (previous_cpu, previous_system) = total(&s.precpu_stats);
    let cpu_delta = cpu - previous_cpu;
    let system_delta = system - previous_system;
    let stats = s.cpu_stats.as_ref();
    let mut cpus = f64::from(stats.and_then(|c| c.online_cpus).unwrap_or(0));
    if cpus == 0.0 {
        cpus = stats
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.percpu_usage.as_ref())
            .map_or(0, Vec::len) as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * cpus * 100.0
    } else {
        0.0
    }
}

/// Memory in use without the page cache docker leaves out
/// (`total_inactive_file` on cgroup v1, `inactive_file` on v2).
fn memory_without_cache(m: &ContainerMemoryStats) -> f64 {
    let usage = m.usage.unwrap_or(0);
    let stats = m.stats.clone().unwrap_or_default();
    if let Some(&inactive) = stats.get("total_inactive_file") {
        if inactive < usage {
            return (usage - inactive) as f64;
        }
    }
    match stats.get("inactive_file") {
        Some(&inactive) if inactive < usage => (usage - inactive) as f64,
        _ => usage as f64,
    }
}

/// A line of the table.
fn row(e: &Entry, trunc: bool) -> [String; 8] {
    let id = if trunc {
        format::short_id(&e.id)
    } else {
        &e.id
    };
    let name = match e.name.strip_prefix('/') {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => "--".to_owned(),
    };
    if e.invalid {
        return [
            id.to_owned(),
            name,
            "--".into(),
            "-- / --".into(),
            "--".into(),
            "--".into(),
            "--".into(),
            "--".into(),
        ];
    }
    [
        id.to_owned(),
        name,
        format!("{:.2}%", e.cpu_percent),
        format!(
            "{} / {}",
            format::bytes_size(e.memory),
            format::bytes_size(e.memory_limit)
        ),
        format!("{:.2}%", e.memory_percent),
        format!(
            "{} / {}",
            format::human_size(e.net_rx, 3),
            format::human_size(e.net_tx, 3)
        ),
        format!(
            "{} / {}",
            format::human_size(e.block_read, 3),
            format::human_size(e.block_write, 3)
        ),
        e.pids.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> ContainerStatsResponse {
        serde_json::from_value(json!({
            "id": "7fa642e6bf0a0b857b9716bce6d620d78907da5b49130bd0d03fb4d9e18f59d7",
            "name": "/dwt1",
            "cpu_stats": {
                "cpu_usage": {"total_usage": 3_000_000u64},
                "system_cpu_usage": 2_000_000_000u64,
                "online_cpus": 2
            },
            "precpu_stats": {
                "cpu_usage": {"total_usage": 1_000_000u64},
                "system_cpu_usage": 1_000_000_000u64,
                "online_cpus": 2
            },
            "memory_stats": {
                "usage": 1_200_000u64,
                "limit": 25_769_803_776u64,
                "stats": {"total_inactive_file": 200_000u64}
            },
            "networks": {
                "eth0": {"rx_bytes": 1_500u64, "tx_bytes": 0u64},
                "eth1": {"rx_bytes": 500u64, "tx_bytes": 12u64}
            },
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 4096u64},
                {"major": 8, "minor": 0, "op": "Write", "value": 8192u64},
                {"major": 8, "minor": 0, "op": "Total", "value": 12288u64}
            ]},
            "pids_stats": {"current": 2}
        }))
        .unwrap_or_default()
    }

    #[test]
    fn a_sample_reads_as_dockers_stats_line() {
        let entry = Entry::from_sample(&sample());
        assert_eq!(
            row(&entry, true),
            [
                "7fa642e6bf0a",
                "dwt1",
                "0.40%",
                "976.6KiB / 24GiB",
                "0.00%",
                "2kB / 12B",
                "4.1kB / 8.19kB",
                "2",
            ]
        );
    }

    #[test]
    fn cpu_is_zero_without_a_previous_system_sample_that_moved() {
        let mut s = sample();
        s.precpu_stats = s.cpu_stats.clone();
        assert_eq!(cpu_percent(&s), 0.0);
    }

    #[test]
    fn the_first_sample_of_a_stream_has_no_previous_cpu() {
        let mut s = sample();
        assert!(has_previous_cpu(&s));
        s.precpu_stats = None;
        assert!(!has_previous_cpu(&s));
        // A stopped container's samples are all zero: shown as they are.
        s.cpu_stats = None;
        assert!(has_previous_cpu(&s));
    }

    #[test]
    fn memory_leaves_the_inactive_page_cache_out() {
        let m =
            serde_json::from_value(json!({"usage": 1000u64, "stats": {"inactive_file": 300u64}}))
                .unwrap_or_default();
        assert_eq!(memory_without_cache(&m), 700.0);
        let m = serde_json::from_value(
            json!({"usage": 1000u64, "stats": {"total_inactive_file": 3000u64}}),
        )
        .unwrap_or_default();
        assert_eq!(memory_without_cache(&m), 1000.0);
    }

    #[test]
    fn a_lost_container_shows_dashes() {
        let entry = Entry {
            id: "abc".into(),
            name: "/web".into(),
            invalid: true,
            ..Entry::default()
        };
        assert_eq!(
            row(&entry, true),
            ["abc", "web", "--", "-- / --", "--", "--", "--", "--"]
        );
    }
}
