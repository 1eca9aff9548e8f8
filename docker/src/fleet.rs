//! A fleet: many named dockwire servers, each with its engine, driven as
//! one from the client side. There is no cluster to run: each host keeps
//! its own `dockwire serve`; the fleet is a set of connections.
//!
//! - **Connections** are opened lazily by each host's [`Dial`], kept, and
//!   opened again on the next call after one failed at the transport.
//! - **Fan-out** ([`Fleet::each`]) runs a call on every host at once, each
//!   within the fleet's timeout, and answers per host.
//! - **Placement** ([`Fleet::place`]) ranks the hosts for new work from
//!   the figures each reports (`system/resources`), after its constraints
//!   (the server's labels, the image present).
//! - **Health** ([`Fleet::health`]): per host, the last success and the
//!   last failure.
//!
//! The fleet is runtime-agnostic: the caller gives it a way to dial each
//! host and a [`Sleep`] for its timeouts.
//!
//! ```no_run
//! # async fn doc(dial_a: dockwire_docker::fleet::Dial, dial_b: dockwire_docker::fleet::Dial) {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use dockwire_docker::catalog::ContainerList;
//! use dockwire_docker::fleet::{Fleet, Placement, Wants};
//!
//! let sleep = Arc::new(|d| Box::pin(tokio::time::sleep(d)) as _);
//! let mut fleet = Fleet::new(sleep, Duration::from_secs(5));
//! fleet.add("gpu1", dial_a);
//! fleet.add("web2", dial_b);
//! for (host, listed) in fleet.each(|_, c| async move { c.query(&ContainerList::default()).await }).await {
//!     println!("{host}: {:?}", listed.map(|l| l.len()));
//! }
//! let ranked = fleet.place(Placement::LeastLoaded, &Wants::default()).await.unwrap();
//! let (host, client) = fleet.client_of(&ranked[0]).await.unwrap();
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use dockwire_core::ErrorCode;
use dockwire_service::ClientError;
use futures::future::{BoxFuture, Either, join_all, select};

use crate::catalog::{HostResources, ImageList, Resources};
use crate::client::DockerClient;

/// Opens a connection to one host.
pub type Dial = Arc<dyn Fn() -> BoxFuture<'static, Result<DockerClient, FleetError>> + Send + Sync>;

/// Waits this long (the runtime's timer).
pub type Sleep = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// Why a host gave no answer.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// No connection could be made.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// No answer within the fleet's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The call failed.
    #[error("{0}")]
    Call(#[from] ClientError),
    /// The fleet has no host of this name.
    #[error("no host named {0:?}")]
    UnknownHost(String),
    /// No host could take the work: none answered, or none met the
    /// constraints.
    #[error("no host can take it: {0}")]
    NoHost(String),
}

impl FleetError {
    /// Whether this failure came before the host did anything: it could
    /// not be reached, or its engine did not answer. Work that failed so
    /// may be tried on another host.
    pub fn before_work(&self) -> bool {
        match self {
            FleetError::Connect(_) | FleetError::Timeout(_) | FleetError::UnknownHost(_) => true,
            FleetError::Call(ClientError::Connect(_)) => true,
            FleetError::Call(ClientError::Remote(e)) => e.code == ErrorCode::UNAVAILABLE,
            _ => false,
        }
    }
}

/// How [`Fleet::place`] ranks the hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// The most memory available first (then the lowest load).
    LeastLoaded,
    /// The fewest running containers first (a user's own, for a user).
    Spread,
    /// The hosts in the fleet's order, those that answer.
    FirstHealthy,
}

/// What new work needs of its host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wants {
    /// Labels the server must have (`serve --label`), each with this value.
    pub labels: BTreeMap<String, String>,
    /// An image the host's engine must already have.
    pub image: Option<String>,
}

/// One host's health: when it last answered and how it last failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Whether a connection is open now.
    pub connected: bool,
    /// When a call last succeeded.
    pub last_ok: Option<SystemTime>,
    /// The last failure, and when.
    pub last_error: Option<(SystemTime, String)>,
}

/// Many named hosts; see the module's documentation.
pub struct Fleet {
    hosts: Vec<Host>,
    sleep: Sleep,
    timeout: Duration,
}

struct Host {
    name: String,
    dial: Dial,
    state: Mutex<HostState>,
    /// One dial at a time per host.
    dialing: futures::lock::Mutex<()>,
}

#[derive(Default)]
struct HostState {
    client: Option<DockerClient>,
    health: Health,
}

impl Fleet {
    /// An empty fleet whose calls each get `timeout`, timed by `sleep`.
    pub fn new(sleep: Sleep, timeout: Duration) -> Self {
        Fleet {
            hosts: Vec::new(),
            sleep,
            timeout,
        }
    }

    /// Adds host `name`, reached by `dial` (not dialled yet). A name
    /// already there is replaced.
    pub fn add(&mut self, name: impl Into<String>, dial: Dial) {
        let name = name.into();
        self.hosts.retain(|h| h.name != name);
        self.hosts.push(Host {
            name,
            dial,
            state: Mutex::new(HostState::default()),
            dialing: futures::lock::Mutex::new(()),
        });
    }

    /// The hosts' names, in the order they were added.
    pub fn names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// Host `name`'s health.
    pub fn health(&self, name: &str) -> Option<Health> {
        let host = self.host(name).ok()?;
        Some(host.lock().health.clone())
    }

    /// Host `name`'s client, dialled now if it has none.
    pub async fn client_of(&self, name: &str) -> Result<(String, DockerClient), FleetError> {
        let host = self.host(name)?;
        let client = self.timed(self.connect(host)).await?;
        Ok((host.name.clone(), client))
    }

    /// Runs `call` on every host at once, each (its dial included) within
    /// the fleet's timeout: each host's answer, in the fleet's order. A
    /// host whose connection failed is dialled again on its next call.
    pub async fn each<T, F, Fut>(&self, call: F) -> Vec<(String, Result<T, FleetError>)>
    where
        F: Fn(String, DockerClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let calls = self.hosts.iter().map(|host| {
            let call = &call;
            async move {
                let answer = self
                    .timed(async {
                        let client = self.connect(host).await?;
                        Ok(call(host.name.clone(), client).await?)
                    })
                    .await;
                self.record(host, &answer);
                (host.name.clone(), answer)
            }
        });
        join_all(calls).await
    }

    /// The hosts that can take new work that `wants`, best first by
    /// `placement`, from the figures each reports now (`system/resources`).
    /// A host that does not answer, or does not meet `wants`, is left out;
    /// none left is [`FleetError::NoHost`], saying why for each.
    pub async fn place(
        &self,
        placement: Placement,
        wants: &Wants,
    ) -> Result<Vec<String>, FleetError> {
        let image = wants.image.clone();
        let answers = self
            .each(|_, client| {
                let image = image.clone();
                async move {
                    let resources = client.query(&Resources {}).await?;
                    // `image/list` filtered by reference: users may list,
                    // not inspect.
                    let has_image = match image {
                        None => true,
                        Some(image) => {
                            let listed = ImageList {
                                all: false,
                                filters: HashMap::from([("reference".to_owned(), vec![image])]),
                            };
                            !client.query(&listed).await?.is_empty()
                        }
                    };
                    Ok((resources, has_image))
                }
            })
            .await;
        let mut why = Vec::new();
        let mut fit: Vec<(usize, String, HostResources)> = Vec::new();
        for (at, (name, answer)) in answers.into_iter().enumerate() {
            match answer {
                Err(e) => why.push(format!("{name}: {e}")),
                Ok((_, false)) => why.push(format!(
                    "{name}: has no image {:?}",
                    wants.image.as_deref().unwrap_or_default()
                )),
                Ok((resources, true)) => match missing_label(&resources, &wants.labels) {
                    Some(label) => why.push(format!("{name}: not labelled {label}")),
                    None => fit.push((at, name, resources)),
                },
            }
        }
        if fit.is_empty() {
            return Err(FleetError::NoHost(match why.is_empty() {
                true => "the fleet has no hosts".into(),
                false => why.join("; "),
            }));
        }
        rank(placement, &mut fit);
        Ok(fit.into_iter().map(|(_, name, _)| name).collect())
    }

    fn host(&self, name: &str) -> Result<&Host, FleetError> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| FleetError::UnknownHost(name.to_owned()))
    }

    /// `host`'s kept client, or a new one.
    async fn connect(&self, host: &Host) -> Result<DockerClient, FleetError> {
        if let Some(client) = host.lock().client.clone() {
            return Ok(client);
        }
        let _one = host.dialing.lock().await;
        if let Some(client) = host.lock().client.clone() {
            return Ok(client);
        }
        let client = (host.dial)().await?;
        host.lock().client = Some(client.clone());
        Ok(client)
    }

    /// `work`, or [`FleetError::Timeout`] after the fleet's timeout.
    async fn timed<T>(
        &self,
        work: impl Future<Output = Result<T, FleetError>>,
    ) -> Result<T, FleetError> {
        let work = std::pin::pin!(work);
        match select(work, (self.sleep)(self.timeout)).await {
            Either::Left((answer, _)) => answer,
            Either::Right(((), _)) => Err(FleetError::Timeout(self.timeout)),
        }
    }

    /// Notes `answer` in `host`'s health; a transport failure drops its
    /// connection, to be dialled again.
    fn record<T>(&self, host: &Host, answer: &Result<T, FleetError>) {
        let mut state = host.lock();
        let now = SystemTime::now();
        match answer {
            Ok(_) => state.health.last_ok = Some(now),
            Err(e) => {
                state.health.last_error = Some((now, e.to_string()));
                let transport = matches!(
                    e,
                    FleetError::Timeout(_)
                        | FleetError::Connect(_)
                        | FleetError::Call(ClientError::Connect(_) | ClientError::Io(_))
                );
                if transport {
                    state.client = None;
                }
            }
        }
        state.health.connected = state.client.is_some();
    }
}

impl Host {
    fn lock(&self) -> std::sync::MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The first of `wanted` that `resources`' labels lack, as `KEY=VALUE`.
fn missing_label(resources: &HostResources, wanted: &BTreeMap<String, String>) -> Option<String> {
    wanted
        .iter()
        .find(|(k, v)| resources.labels.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
}

/// Sorts `hosts` (each with its place in the fleet) best first.
fn rank(placement: Placement, hosts: &mut [(usize, String, HostResources)]) {
    match placement {
        Placement::FirstHealthy => hosts.sort_by_key(|(at, _, _)| *at),
        Placement::Spread => hosts.sort_by_key(|(at, _, r)| (r.containers_running, *at)),
        Placement::LeastLoaded => hosts.sort_by(|(a_at, _, a), (b_at, _, b)| {
            let free = |r: &HostResources| r.memory_available.unwrap_or(-1);
            let load = |r: &HostResources| r.load1.unwrap_or(f64::MAX);
            free(b)
                .cmp(&free(a))
                .then(load(a).total_cmp(&load(b)))
                .then(a_at.cmp(b_at))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(
        at: usize,
        free: Option<i64>,
        running: i64,
        load: f64,
    ) -> (usize, String, HostResources) {
        (
            at,
            format!("h{at}"),
            HostResources {
                memory_available: free,
                containers_running: running,
                load1: Some(load),
                ..HostResources::default()
            },
        )
    }

    fn ranked(placement: Placement, mut hosts: Vec<(usize, String, HostResources)>) -> Vec<String> {
        rank(placement, &mut hosts);
        hosts.into_iter().map(|(_, name, _)| name).collect()
    }

    #[test]
    fn each_placement_ranks_the_hosts_its_way() {
        let hosts = vec![
            host(0, Some(1 << 30), 5, 0.5),
            host(1, Some(8 << 30), 2, 3.0),
            host(2, None, 0, 0.1),
            host(3, Some(8 << 30), 9, 1.0),
        ];
        assert_eq!(
            ranked(Placement::LeastLoaded, hosts.clone()),
            ["h3", "h1", "h0", "h2"]
        );
        assert_eq!(
            ranked(Placement::Spread, hosts.clone()),
            ["h2", "h1", "h0", "h3"]
        );
        assert_eq!(
            ranked(Placement::FirstHealthy, hosts),
            ["h0", "h1", "h2", "h3"]
        );
        // Ties keep the fleet's order.
        let even = vec![host(0, Some(1), 1, 1.0), host(1, Some(1), 1, 1.0)];
        assert_eq!(ranked(Placement::Spread, even.clone()), ["h0", "h1"]);
        assert_eq!(ranked(Placement::LeastLoaded, even), ["h0", "h1"]);
    }

    #[test]
    fn a_host_lacking_a_wanted_label_is_named() {
        let mut resources = HostResources::default();
        resources.labels.insert("gpu".into(), "a100".into());
        let wanted = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(missing_label(&resources, &wanted("gpu", "a100")), None);
        assert_eq!(
            missing_label(&resources, &wanted("gpu", "h100")),
            Some("gpu=h100".into())
        );
        assert_eq!(
            missing_label(&resources, &wanted("zone", "eu")),
            Some("zone=eu".into())
        );
    }

    /// A host whose first dial fails is dialled again on the next call; a
    /// call the server answers (even with an error) keeps the connection.
    #[test]
    fn a_failed_dial_is_tried_again_and_an_answer_keeps_the_connection() {
        use dockwire_service::Runtime;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dials = Arc::new(AtomicUsize::new(0));
            let dial: Dial = {
                let dials = dials.clone();
                Arc::new(move || {
                    let first = dials.fetch_add(1, Ordering::SeqCst) == 0;
                    Box::pin(async move {
                        if first {
                            return Err(FleetError::Connect("refused".into()));
                        }
                        // An engine that is not there: its calls answer
                        // UNAVAILABLE, over a live connection.
                        let service = crate::DockerService::unix(
                            "/nonexistent/docker.sock",
                            crate::Config::from_env(),
                        );
                        let client = dockwire_tokio::Tokio::current()
                            .duplex_client(Arc::new(service), Default::default());
                        Ok(DockerClient::new(client))
                    })
                })
            };
            let sleep: Sleep = Arc::new(|d| Box::pin(tokio::time::sleep(d)));
            let mut fleet = Fleet::new(sleep, Duration::from_secs(5));
            fleet.add("a", dial);
            let ask = |_, c: DockerClient| async move { c.query(&Resources {}).await };
            let first = fleet.each(ask).await;
            assert!(
                matches!(first[0].1, Err(FleetError::Connect(_))),
                "{first:?}"
            );
            assert!(!fleet.health("a").unwrap().connected);
            for _ in 0..2 {
                let answered = fleet.each(ask).await;
                let Err(FleetError::Call(ClientError::Remote(e))) = &answered[0].1 else {
                    panic!("{answered:?}");
                };
                assert_eq!(e.code, ErrorCode::UNAVAILABLE);
                assert!(fleet.health("a").unwrap().connected);
            }
            assert_eq!(dials.load(Ordering::SeqCst), 2);
            let health = fleet.health("a").unwrap();
            assert!(
                health.last_error.is_some() && health.last_ok.is_none(),
                "{health:?}"
            );
        });
    }

    #[test]
    fn only_failures_before_any_work_may_move_to_another_host() {
        let remote = |code| {
            FleetError::Call(ClientError::Remote(dockwire_core::CallError::new(
                code, "x",
            )))
        };
        assert!(FleetError::Timeout(Duration::from_secs(1)).before_work());
        assert!(FleetError::Connect("refused".into()).before_work());
        assert!(remote(ErrorCode::UNAVAILABLE).before_work());
        assert!(!remote(ErrorCode::INVALID_INPUT).before_work());
        assert!(!FleetError::Call(ClientError::Aborted).before_work());
    }
}
