//! Containers' lifetimes (issue 14): `ttl` and `idleTimeout` against the
//! real engine, over QUIC with mutual TLS as `dockwire serve` runs it
//! (the call log and per-peer limit around the Docker service, whose
//! lifetimes enforcer runs beside it), with the tenancy cast: alice and
//! bob (users) and root (an admin).
//!
//! | rule | test |
//! |---|---|
//! | a ttl removes on time, from the start; `inspect` shows the deadline | `a_ttl_container_is_removed_on_time_and_inspect_shows_when` |
//! | a restart of the container does not extend its ttl | `a_restart_of_the_container_does_not_extend_its_ttl` |
//! | a `run` with a ttl ends and leaves nothing | `a_run_with_a_ttl_ends_when_its_container_is_removed` |
//! | an idle timeout removes on time; a call pushes it | `an_idle_container_is_removed_on_time_and_a_call_pushes_its_deadline` |
//! | a running call holds its container; its end touches it | `a_running_exec_holds_an_idle_container_and_its_end_touches_it` |
//! | users' maximum refused before anything is made; defaults; bad durations | `a_users_lifetime_above_the_maximum_is_refused_and_nothing_is_made` |
//! | nothing else is touched | `only_this_servers_sealed_timed_containers_are_removed` |
//! | deadlines across a restart of the server | `deadlines_hold_across_a_restart_of_the_server` |
//!
//! Times are a few seconds; "on time" is within 2 s of the deadline.
//! Everything a test makes carries its label or is owned by one of its
//! keys; `Tenancy::finish` fails the test if any of it is left.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters as q;
use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerClient, DockerService, LifetimePolicy, OwnerKey};
use dockwire_service::{CallLog, PeerLimit};
use dockwire_tests::docker::{IMAGE, engine, unique};
use dockwire_tests::quic_peers::QuicServed;
use dockwire_tests::tenancy::*;
use dockwire_tests::{Rt, sleep_ms};

/// How far from its deadline a container may go.
const SLACK: Duration = Duration::from_secs(2);

/// A server of the real engine with its lifetimes enforcer, for a
/// test's cast; the enforcer stops when it is dropped.
struct Enforced {
    served: QuicServed,
    enforcer: tokio::task::JoinHandle<()>,
}

impl Enforced {
    fn new(t: &Tenancy, config: Config) -> Enforced {
        let docker = Docker::connect_with_local_defaults().unwrap();
        let config = config
            .with_server_id(&t.server_id)
            .with_roles(t.peers.trust().roles());
        let service = DockerService::new(docker, config);
        let enforcer = tokio::spawn(service.lifetimes());
        let service = CallLog::new(PeerLimit::new(service, 1024));
        Enforced {
            served: t.peers.serve(Arc::new(service)),
            enforcer,
        }
    }

    fn client(&self, name: &str) -> DockerClient {
        DockerClient::new(self.served.client(name))
    }
}

impl Drop for Enforced {
    fn drop(&mut self) {
        self.enforcer.abort();
    }
}

/// `spec` with a ttl and an idle timeout.
fn timed(mut spec: ContainerSpec, ttl: Option<&str>, idle: Option<&str>) -> ContainerSpec {
    spec.ttl = ttl.map(Into::into);
    spec.idle_timeout = idle.map(Into::into);
    spec
}

/// Creates and starts `spec` (sleeping) as `who`: its id.
async fn sleeper(who: &DockerClient, mut spec: ContainerSpec) -> String {
    spec.cmd = vec!["sleep".into(), "3600".into()];
    let created = who.query(&ContainerCreate(spec)).await.unwrap();
    who.query(&ContainerStart(ContainerRef::new(&created.id)))
        .await
        .unwrap();
    created.id
}

/// Whether the engine still has container `id` (asked behind dockwire's
/// back, so that asking touches nothing).
async fn exists(id: &str) -> bool {
    engine()
        .inspect_container(id, None::<q::InspectContainerOptions>)
        .await
        .is_ok()
}

/// When the engine no longer has container `id`, polled every 100 ms for
/// `limit` at most.
async fn gone_at(id: &str, limit: Duration) -> SystemTime {
    let start = Instant::now();
    while exists(id).await {
        assert!(
            start.elapsed() < limit,
            "{id} is still there after {limit:?}"
        );
        sleep_ms(100).await;
    }
    SystemTime::now()
}

/// The engine's start time of container `id`.
async fn started_at(id: &str) -> SystemTime {
    let info = engine()
        .inspect_container(id, None::<q::InspectContainerOptions>)
        .await
        .unwrap();
    let text = info.state.unwrap().started_at.unwrap();
    rfc3339(&text)
}

fn rfc3339(text: &str) -> SystemTime {
    let time = chrono::DateTime::parse_from_rfc3339(text).unwrap();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(time.timestamp_millis()).unwrap())
}

/// Asserts that `at` is within [`SLACK`] of `expected`.
fn on_time(what: &str, at: SystemTime, expected: SystemTime) {
    let off = match at.duration_since(expected) {
        Ok(late) => late,
        Err(early) => early.duration(),
    };
    assert!(
        off <= SLACK,
        "{what}: {off:?} off its deadline (at {at:?}, expected {expected:?})"
    );
}

/// The labels of `id` as `who` inspects it.
async fn inspected_labels(who: &DockerClient, id: &str) -> HashMap<String, String> {
    let info = who
        .query(&ContainerInspect(ContainerRef::new(id)))
        .await
        .unwrap();
    info.config.unwrap().labels.unwrap_or_default()
}

#[test]
fn a_ttl_container_is_removed_on_time_and_inspect_shows_when() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let server = Enforced::new(&t, Config::from_env());
        let alice = server.client("alice");
        let id = sleeper(&alice, timed(t.spec(&[]), Some("4s"), None)).await;
        let started = started_at(&id).await;
        let labels = inspected_labels(&alice, &id).await;
        assert_eq!(labels.get(LABEL_TTL).map(String::as_str), Some("4s"));
        assert_eq!(labels.get(LABEL_IDLE_TIMEOUT).map(String::as_str), Some(""));
        assert_eq!(
            labels.get(LABEL_EXPIRES_BY).map(String::as_str),
            Some("ttl")
        );
        let shown = rfc3339(&labels[LABEL_EXPIRES]);
        on_time(
            "inspect's deadline",
            shown,
            started + Duration::from_secs(4),
        );
        // Calls touch it, which a ttl ignores.
        sleep_ms(1500).await;
        exec(&alice, &id, &["true"]).await.unwrap();
        let gone = gone_at(&id, Duration::from_secs(10)).await;
        on_time("removal", gone, started + Duration::from_secs(4));
        missing(
            "alice inspects it",
            "container",
            &id,
            alice.query(&ContainerInspect(ContainerRef::new(&id))).await,
        );
        drop(server);
        t.finish();
    });
}

#[test]
fn a_restart_of_the_container_does_not_extend_its_ttl() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let server = Enforced::new(&t, Config::from_env());
        let alice = server.client("alice");
        let id = sleeper(&alice, timed(t.spec(&[]), Some("3s"), None)).await;
        let started = started_at(&id).await;
        sleep_ms(2500).await;
        alice
            .query(&ContainerRestart(ContainerStop {
                id: id.clone(),
                timeout: Some(0),
            }))
            .await
            .unwrap();
        assert!(started_at(&id).await > started + Duration::from_secs(2));
        // From its first start, not from the restart.
        let gone = gone_at(&id, Duration::from_secs(10)).await;
        on_time("removal", gone, started + Duration::from_secs(3));
        drop(server);
        t.finish();
    });
}

#[test]
fn a_run_with_a_ttl_ends_when_its_container_is_removed() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let server = Enforced::new(&t, Config::from_env());
        let alice = server.client("alice");
        let asked = SystemTime::now();
        let spec = t.spec(&["sh", "-c", "echo up; sleep 60"]);
        let mut spec = timed(spec, Some("2s"), None);
        spec.auto_remove = true;
        let mut items = alice.subscribe(&RunInput(spec)).await.unwrap();
        // It ends: with the killed container's code, or an error once it
        // is gone. Its start is between the ask and its first output.
        let mut up = None;
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(item) = futures::StreamExt::next(&mut items).await {
                match item {
                    Ok(ExecItem::Output { .. }) => {
                        up.get_or_insert_with(SystemTime::now);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        })
        .await;
        let end = SystemTime::now();
        assert!(ended.is_ok(), "the run did not end");
        let up = up.expect("the container said it was up");
        assert!(
            end >= asked + Duration::from_secs(2),
            "ended before its ttl"
        );
        assert!(
            end <= up + Duration::from_secs(2) + SLACK,
            "ended {:?} after it was up",
            end.duration_since(up)
        );
        drop(server);
        t.finish();
    });
}

#[test]
fn an_idle_container_is_removed_on_time_and_a_call_pushes_its_deadline() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let server = Enforced::new(&t, Config::from_env());
        let alice = server.client("alice");
        let created = SystemTime::now();
        let id = sleeper(&alice, timed(t.spec(&[]), None, Some("4s"))).await;
        // Untouched, it would go at about created + 4 s.
        sleep_ms(2500).await;
        let touched = SystemTime::now();
        exec(&alice, &id, &["true"]).await.unwrap();
        sleep_ms(3000).await;
        assert!(
            exists(&id).await,
            "removed at its first deadline though an exec touched it"
        );
        assert!(SystemTime::now() > created + Duration::from_secs(4) + SLACK / 4);
        // inspect touches it too: its deadline is 4 s from now.
        let labels = inspected_labels(&alice, &id).await;
        let inspected = SystemTime::now();
        assert_eq!(
            labels.get(LABEL_EXPIRES_BY).map(String::as_str),
            Some("idle-timeout")
        );
        on_time(
            "inspect's deadline",
            rfc3339(&labels[LABEL_EXPIRES]),
            inspected + Duration::from_secs(4),
        );
        let gone = gone_at(&id, Duration::from_secs(10)).await;
        assert!(gone > touched + Duration::from_secs(4));
        on_time("removal", gone, inspected + Duration::from_secs(4));
        drop(server);
        t.finish();
    });
}

#[test]
fn a_running_exec_holds_an_idle_container_and_its_end_touches_it() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let server = Enforced::new(&t, Config::from_env());
        let alice = server.client("alice");
        let id = sleeper(&alice, timed(t.spec(&[]), None, Some("3s"))).await;
        // An exec twice as long as the idle timeout runs to its end.
        let began = Instant::now();
        let (out, code) = exec(&alice, &id, &["sh", "-c", "sleep 6; echo done"])
            .await
            .unwrap();
        let ended = SystemTime::now();
        assert!(began.elapsed() >= Duration::from_secs(6));
        assert_eq!((out.as_str(), code), ("done\n", 0));
        assert!(exists(&id).await, "removed as idle while an exec ran in it");
        // Its end touched it: idle from then.
        let gone = gone_at(&id, Duration::from_secs(10)).await;
        on_time(
            "removal after the exec",
            gone,
            ended + Duration::from_secs(3),
        );
        drop(server);
        t.finish();
    });
}

#[test]
fn a_users_lifetime_above_the_maximum_is_refused_and_nothing_is_made() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let minute = Some(Duration::from_secs(60));
        let config = Config::from_env()
            .with_user_ttl(LifetimePolicy::new(Some(Duration::from_secs(30)), minute))
            .with_user_idle_timeout(LifetimePolicy::new(None, minute));
        let server = Enforced::new(&t, config);
        let (alice, root) = (server.client("alice"), server.client("root"));

        // Above a maximum: refused, naming it; on create and on run.
        let over = timed(t.spec(&["true"]), Some("2m"), None);
        let message = refused(
            "a ttl over the maximum",
            ErrorCode::FORBIDDEN,
            alice.query(&ContainerCreate(over.clone())).await,
        );
        assert!(
            message.contains("2m") && message.contains("1m"),
            "{message}"
        );
        assert!(message.contains("--user-ttl-max"), "{message}");
        let message = refused(
            "an idle timeout over the maximum (run)",
            ErrorCode::FORBIDDEN,
            run(&alice, timed(t.spec(&["true"]), None, Some("1m1s"))).await,
        );
        assert!(message.contains("--user-idle-timeout-max"), "{message}");
        // Not durations: INVALID_INPUT.
        for bad in ["5", "-5s", "0s", "5 minutes", "1d", ""] {
            refused(
                bad,
                ErrorCode::INVALID_INPUT,
                alice
                    .query(&ContainerCreate(timed(t.spec(&["true"]), Some(bad), None)))
                    .await,
            );
        }
        assert_eq!(
            t.held(),
            Vec::<String>::new(),
            "a refused create made something"
        );

        // Asking for none gets the defaults: the ttl's, and the idle
        // timeout's maximum.
        let id = sleeper(&alice, t.spec(&[])).await;
        let labels = inspected_labels(&alice, &id).await;
        assert_eq!(labels.get(LABEL_TTL).map(String::as_str), Some("30s"));
        assert_eq!(
            labels.get(LABEL_IDLE_TIMEOUT).map(String::as_str),
            Some("1m")
        );
        t.remove(&alice, &id).await;

        // Admins have neither default nor maximum.
        let id = sleeper(&root, timed(t.spec(&[]), Some("2h"), None)).await;
        let labels = inspected_labels(&root, &id).await;
        assert_eq!(labels.get(LABEL_TTL).map(String::as_str), Some("2h"));
        t.remove(&root, &id).await;
        let id = sleeper(&root, t.spec(&[])).await;
        let labels = inspected_labels(&root, &id).await;
        assert_eq!(labels.get(LABEL_TTL).map(String::as_str), Some(""));
        assert!(!labels.contains_key(LABEL_EXPIRES));
        t.remove(&root, &id).await;
        drop(server);
        t.finish();
    });
}

#[test]
fn only_this_servers_sealed_timed_containers_are_removed() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let server = Enforced::new(&t, Config::from_env());
        let (alice, bob, root) = (
            server.client("alice"),
            server.client("bob"),
            server.client("root"),
        );
        let expiring = sleeper(&alice, timed(t.spec(&[]), Some("1s"), None)).await;
        // Bob's and root's containers without a deadline.
        let bobs = sleeper(&bob, t.spec(&[])).await;
        let roots = sleeper(&root, t.spec(&[])).await;
        // A container made outside dockwire with dockwire's labels, a
        // ttl and a made-up seal.
        let mut labels: HashMap<String, String> = t.labels().into_iter().collect();
        for (key, value) in [
            (LABEL_MANAGED, "true".to_owned()),
            (LABEL_OWNER, t.key("alice")),
            (LABEL_AUTO_REMOVE, "false".to_owned()),
            (LABEL_TTL, "1s".to_owned()),
            (LABEL_IDLE_TIMEOUT, "1s".to_owned()),
            ("dockwire.seal", "00".repeat(32)),
        ] {
            labels.insert(key.into(), value);
        }
        let outside = engine()
            .create_container(
                Some(q::CreateContainerOptions {
                    name: Some(unique("lifetimes-outside")),
                    ..Default::default()
                }),
                ContainerCreateBody {
                    image: Some(IMAGE.into()),
                    cmd: Some(vec!["sleep".into(), "3600".into()]),
                    labels: Some(labels),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id;
        engine()
            .start_container(&outside, None::<q::StartContainerOptions>)
            .await
            .unwrap();
        // A timed container sealed by another server's key. Its owner is
        // carol, whose network that server makes: a user network another
        // key sealed is refused on Podman, which does not show its bridge.
        let other = Enforced::new(&t, Config::from_env().with_owner_key(OwnerKey::ephemeral()));
        other.enforcer.abort();
        let others = sleeper(
            &other.client("carol"),
            timed(t.spec(&[]), Some("1s"), Some("1s")),
        )
        .await;

        gone_at(&expiring, Duration::from_secs(6)).await;
        // Well past every other deadline.
        sleep_ms(3000).await;
        for (what, id) in [
            ("bob's", &bobs),
            ("root's", &roots),
            ("one made outside dockwire", &outside),
            ("another server's", &others),
        ] {
            assert!(exists(id).await, "{what} container was removed");
        }
        t.remove(&bob, &bobs).await;
        t.remove(&root, &roots).await;
        t.remove(&root, &outside).await;
        t.remove(&root, &others).await;
        drop((server, other));
        t.finish();
    });
}

#[test]
fn deadlines_hold_across_a_restart_of_the_server() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let dir = StateDir::new();
        let key = OwnerKey::from_bytes(&OwnerKey::generate().unwrap());
        let config = || {
            Config::from_env()
                .with_owner_key(key.clone())
                .with_lifetime_dir(&dir.0)
        };
        let server = Enforced::new(&t, config());
        let alice = server.client("alice");
        let ttl = sleeper(&alice, timed(t.spec(&[]), Some("5s"), None)).await;
        let started = started_at(&ttl).await;
        let idle = sleeper(&alice, timed(t.spec(&[]), None, Some("4s"))).await;
        sleep_ms(2500).await;
        let touched = SystemTime::now();
        exec(&alice, &idle, &["true"]).await.unwrap();
        // The server dies (its enforcer and connections with it), and a
        // new one starts on the same state and key a second later.
        drop(alice);
        drop(server);
        sleep_ms(1000).await;
        let server = Enforced::new(&t, config());
        let alice = server.client("alice");
        // A second before the touch's deadline: counted from its create
        // (2.5 s before the touch), the idle container would be gone; from
        // the touch the first server kept, it is not.
        let wait = (touched + Duration::from_secs(3))
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        sleep_ms(u64::try_from(wait.as_millis()).unwrap()).await;
        assert!(
            exists(&idle).await,
            "the idle deadline lost its touch across the restart"
        );
        let gone = gone_at(&ttl, Duration::from_secs(10)).await;
        on_time("the ttl's removal", gone, started + Duration::from_secs(5));
        let gone = gone_at(&idle, Duration::from_secs(10)).await;
        on_time("the idle removal", gone, touched + Duration::from_secs(4));
        missing(
            "alice inspects it",
            "container",
            &idle,
            alice
                .query(&ContainerInspect(ContainerRef::new(&idle)))
                .await,
        );
        drop(server);
        // Nothing is kept of removed containers.
        sleep_ms(100).await;
        let kept: Vec<_> = std::fs::read_dir(&dir.0)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(kept.is_empty(), "records left: {kept:?}");
        t.finish();
    });
}

/// A state directory of a test's own, removed with it.
struct StateDir(PathBuf);

impl StateDir {
    fn new() -> StateDir {
        StateDir(std::env::temp_dir().join(unique("lifetimes-state")))
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
