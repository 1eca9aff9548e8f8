//! Access control of the Docker service, against the real engine: each
//! peer's role, container ownership, admin-only operations and host
//! access. Peers are named by a wrapper service, as a transport would name
//! them; the transports' own identities are tested in `identity.rs` and by
//! the `dockwire` command's tests.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bollard::Docker;
use bollard::query_parameters as q;
use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::ownership::Kind;
use dockwire_docker::{
    Config, DockerClient, DockerService, Items, OwnerKey, Role, Roles, UserNetwork,
};
use dockwire_service::ClientError;
use dockwire_tests::docker::{Cleanup, IMAGE, engine, on_engine, unique};
use dockwire_tests::{Rt, client_as};
use futures::StreamExt;
use futures::io::AsyncWriteExt;

/// alice and bob are users, root is an admin, eve is nobody.
fn roles() -> Roles {
    Roles::new(|peer| match peer {
        "alice" | "bob" => Some(Role::User),
        "root" => Some(Role::Admin),
        _ => None,
    })
}

/// Users' containers get no network here: users' networks are
/// `tenancy.rs`'s, and parallel tests of alice's and bob's would
/// share theirs.
fn service(config: Config) -> Arc<DockerService> {
    let _ = engine();
    let docker = Docker::connect_with_local_defaults().expect("the local engine's client");
    let config = config.with_user_network(UserNetwork::None);
    Arc::new(DockerService::new(docker, config))
}

fn client(service: &Arc<DockerService>, peer: &'static str) -> DockerClient {
    DockerClient::new(client_as(peer, service))
}

fn code<T>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Remote(e)) => e.code,
        Err(other) => panic!("expected a remote error, got {other:?}"),
        Ok(_) => panic!("expected a remote error, got a success"),
    }
}

fn forbidden<T>(what: &str, result: Result<T, ClientError>) {
    assert_eq!(code(result), ErrorCode::FORBIDDEN, "{what}");
}

/// What a user gets for a container that is not its own: what a missing
/// one gives, naming only its own reference.
fn missing<T>(what: &str, reference: &str, result: Result<T, ClientError>) {
    match result {
        Err(ClientError::Remote(e)) => {
            assert_eq!(e.code, CONTAINER_NOT_FOUND, "{what}: {}", e.message);
            assert_eq!(
                e.message,
                format!("No such container: {reference}"),
                "{what}"
            );
        }
        Err(other) => panic!("{what}: expected a remote error, got {other:?}"),
        Ok(_) => panic!("{what}: expected a remote error, got a success"),
    }
}

/// A sleeping container made by `docker` (as its peer), removed at the end.
async fn sleeper(docker: &DockerClient, cleanup: &Cleanup, labels: &[(&str, &str)]) -> String {
    let mut spec = ContainerSpec::new(IMAGE, ["sleep", "3600"]);
    spec.name = Some(unique("access"));
    spec.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    let created = docker.query(&ContainerCreate(spec)).await.unwrap();
    cleanup.add(&created.id);
    docker
        .query(&ContainerStart(ContainerRef::new(&created.id)))
        .await
        .unwrap();
    created.id
}

/// Every way a user could reach a container it does not own finds
/// nothing, exactly as for a container that does not exist.
async fn nothing_reaches(bob: &DockerClient, id: &str) {
    let r = || ContainerRef::new(id);
    missing("inspect", id, bob.query(&ContainerInspect(r())).await);
    missing("start", id, bob.query(&ContainerStart(r())).await);
    missing(
        "stop",
        id,
        bob.query(&ContainerStop {
            id: id.into(),
            timeout: Some(0),
        })
        .await,
    );
    missing(
        "restart",
        id,
        bob.query(&ContainerRestart(ContainerStop {
            id: id.into(),
            timeout: Some(0),
        }))
        .await,
    );
    missing(
        "kill",
        id,
        bob.query(&ContainerKill {
            id: id.into(),
            signal: None,
        })
        .await,
    );
    missing(
        "remove",
        id,
        bob.query(&ContainerRemove {
            id: id.into(),
            force: true,
            volumes: false,
        })
        .await,
    );
    missing("wait", id, bob.query(&ContainerWait(r())).await);
    missing(
        "top",
        id,
        bob.query(&ContainerTop {
            id: id.into(),
            ps_args: None,
        })
        .await,
    );
    let first = |items: Result<Items<LogItem>, ClientError>| async move {
        items.unwrap().next().await.expect("one item: the error")
    };
    missing(
        "logs",
        id,
        first(bob.subscribe(&ContainerLogs::new(id)).await).await,
    );
    let mut stats = bob
        .subscribe(&ContainerStats {
            id: id.into(),
            stream: false,
        })
        .await
        .unwrap();
    missing(
        "stats",
        id,
        stats.next().await.expect("one item: the error"),
    );
    let mut exec = bob
        .subscribe(&ExecInput::new(id, ["echo", "in"]))
        .await
        .unwrap();
    missing(
        "exec json",
        id,
        exec.next().await.expect("one item: the error"),
    );
    missing(
        "exec raw",
        id,
        bob.open(&ExecInput::new(id, ["echo", "in"])).await,
    );
    missing(
        "attach",
        id,
        bob.open(&AttachInput {
            id: id.into(),
            stdin: true,
        })
        .await,
    );
    missing(
        "archive get",
        id,
        bob.open(&ArchiveGet {
            id: id.into(),
            path: "/etc".into(),
        })
        .await,
    );
    missing(
        "archive put",
        id,
        bob.open(&ArchivePut {
            id: id.into(),
            path: "/tmp".into(),
        })
        .await,
    );
}

#[test]
fn a_user_cannot_see_or_touch_another_peers_container() {
    Rt::Tokio.block_on(async {
        let service = service(Config::from_env().with_roles(roles()));
        let (alice, bob, root) = (
            client(&service, "alice"),
            client(&service, "bob"),
            client(&service, "root"),
        );
        let cleanup = Cleanup::default();
        let id = sleeper(&alice, &cleanup, &[("dockwire.owner", "bob")]).await;

        // The forged owner was overwritten: the container is alice's.
        let info = alice
            .query(&ContainerInspect(ContainerRef::new(&id)))
            .await
            .unwrap();
        let labels = info.config.clone().unwrap().labels.unwrap();
        assert_eq!(labels.get(LABEL_OWNER).map(String::as_str), Some("alice"));
        // No path of the engine's host in what a user sees.
        let paths = [
            &info.log_path,
            &info.resolv_conf_path,
            &info.hostname_path,
            &info.hosts_path,
        ];
        assert!(paths.iter().all(|p| p.is_none()), "{paths:?}");
        assert!(info.graph_driver.is_none(), "{:?}", info.graph_driver);
        let root_view = root
            .query(&ContainerInspect(ContainerRef::new(&id)))
            .await
            .unwrap();
        assert!(root_view.log_path.is_some_and(|p| p.starts_with('/')));

        nothing_reaches(&bob, &id).await;
        // By name too: alice's name is hers; bob's names are his own.
        let name = info.name.unwrap().trim_start_matches('/').to_owned();
        missing(
            "inspect by name",
            &name,
            bob.query(&ContainerInspect(ContainerRef::new(&name))).await,
        );

        // bob's list does not show it; alice's and root's do.
        let listed = |docker: DockerClient| {
            let id = id.clone();
            async move {
                let all = docker
                    .query(&ContainerList {
                        all: true,
                        filters: HashMap::new(),
                    })
                    .await
                    .unwrap();
                all.iter().any(|c| c.id.as_deref() == Some(&id))
            }
        };
        assert!(!listed(bob.clone()).await, "bob sees alice's container");
        assert!(listed(alice.clone()).await, "alice does not see hers");
        assert!(listed(root.clone()).await, "the admin does not see it");

        // Still running, untouched by bob's attempts.
        let info = root
            .query(&ContainerInspect(ContainerRef::new(&id)))
            .await
            .unwrap();
        assert_eq!(info.state.unwrap().running, Some(true));

        // alice can exec into her own container; the admin can too.
        for docker in [&alice, &root] {
            let mut items = docker
                .subscribe(&ExecInput::new(&id, ["echo", "mine"]))
                .await
                .unwrap();
            let mut out = Vec::new();
            let mut exit = None;
            while let Some(item) = items.next().await {
                match item.unwrap() {
                    ExecItem::Output { data, .. } => {
                        out.extend_from_slice(&data.to_bytes().unwrap())
                    }
                    ExecItem::Exit { exit_code, .. } => exit = Some(exit_code),
                }
            }
            assert_eq!(out, b"mine\n");
            assert_eq!(exit, Some(0));
        }
        // A missing container is still "not found" for a user.
        assert_eq!(
            code(
                bob.query(&ContainerInspect(ContainerRef::new(
                    "no-such-container-acl"
                )))
                .await
            ),
            CONTAINER_NOT_FOUND
        );
        // The admin removes it.
        root.query(&ContainerRemove {
            id: id.clone(),
            force: true,
            volumes: false,
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_user_cannot_touch_a_container_made_outside_dockwire() {
    Rt::Tokio.block_on(async {
        let service = service(Config::from_env().with_roles(roles()));
        let alice = client(&service, "alice");
        let root = client(&service, "root");
        let docker = engine();
        let name = unique("outside");
        let body = bollard::models::ContainerCreateBody {
            image: Some(IMAGE.into()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            ..Default::default()
        };
        let options = q::CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let cleanup = Cleanup::default();
        let created = on_engine(docker.create_container(Some(options), body)).unwrap();
        cleanup.add(&created.id);
        on_engine(docker.start_container(&created.id, None::<q::StartContainerOptions>)).unwrap();

        nothing_reaches(&alice, &created.id).await;
        let all = alice
            .query(&ContainerList {
                all: true,
                filters: HashMap::new(),
            })
            .await
            .unwrap();
        assert!(all.iter().all(|c| c.id.as_deref() != Some(&created.id)));
        // An admin may act on it.
        root.query(&ContainerInspect(ContainerRef::new(&name)))
            .await
            .unwrap();
    });
}

#[test]
fn a_users_events_show_only_its_own_containers() {
    Rt::Tokio.block_on(async {
        let service = service(Config::from_env().with_roles(roles()));
        let (alice, bob) = (client(&service, "alice"), client(&service, "bob"));
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .saturating_sub(1);
        let cleanup = Cleanup::default();
        let hers = sleeper(&alice, &cleanup, &[]).await;
        let his = sleeper(&bob, &cleanup, &[]).await;
        let until = since + 600;
        let mut events = bob
            .subscribe(&Events {
                since: Some(since.to_string()),
                until: Some(until.to_string()),
                filters: HashMap::new(),
            })
            .await
            .unwrap();
        // Read until bob's own start event; alice's must not come before
        // (or with) it.
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            let event = event.unwrap();
            let id = event.actor.and_then(|a| a.id).unwrap_or_default();
            assert_ne!(id, hers, "bob saw an event of alice's container");
            seen.push(id.clone());
            if id == his && event.action.as_deref() == Some("start") {
                break;
            }
        }
        assert!(
            seen.contains(&his),
            "bob's own events are missing: {seen:?}"
        );
    });
}

#[test]
fn image_inspect_and_remove_need_an_admin_pull_and_list_do_not() {
    Rt::Tokio.block_on(async {
        // Users pull from the registries the server allows (see
        // tenancy.rs): here the local one.
        let config = Config::from_env()
            .with_roles(roles())
            .with_allowed_registry("127.0.0.1:5000");
        let service = service(config);
        let alice = client(&service, "alice");
        let root = client(&service, "root");
        alice
            .query(&ImageList {
                all: false,
                filters: HashMap::new(),
            })
            .await
            .unwrap();
        let mut pull = alice
            .subscribe(&ImagePull {
                image: dockwire_tests::docker::REGISTRY_IMAGE.into(),
            })
            .await
            .unwrap();
        while let Some(item) = pull.next().await {
            item.unwrap();
        }
        let image = || ImageRef {
            image: IMAGE.into(),
        };
        forbidden("engine info", alice.query(&Info {}).await);
        // A shared image she may inspect (without the engine's storage
        // paths) but not remove.
        let seen = alice.query(&ImageInspect(image())).await.unwrap();
        assert!(seen.graph_driver.is_none(), "{seen:?}");
        forbidden(
            "image remove",
            alice
                .query(&ImageRemove {
                    image: IMAGE.into(),
                    force: false,
                })
                .await,
        );
        // The admin may.
        root.query(&Info {}).await.unwrap();
        root.query(&ImageInspect(image())).await.unwrap();
    });
}

#[test]
fn a_peer_without_a_role_is_refused_everything() {
    Rt::Tokio.block_on(async {
        let service = service(Config::from_env().with_roles(roles()));
        let eve = client(&service, "eve");
        forbidden("ping", eve.query(&Ping {}).await);
        forbidden(
            "list",
            eve.query(&ContainerList {
                all: true,
                filters: HashMap::new(),
            })
            .await,
        );
        forbidden(
            "run",
            eve.open(&RunInput(ContainerSpec::new(IMAGE, ["true"])))
                .await,
        );
    });
}

/// A container that prints the host's hostname file, named `name`.
fn host_spec(name: &str, mounts: Vec<Mount>, network: Option<&str>) -> ContainerSpec {
    let mut spec = ContainerSpec::new(IMAGE, ["cat", "/host/etc/hostname"]);
    spec.name = Some(name.into());
    spec.mounts = mounts;
    spec.network = network.map(str::to_owned);
    spec.auto_remove = true;
    spec
}

fn root_mount() -> Vec<Mount> {
    vec![Mount {
        source: "/".into(),
        target: "/host".into(),
        read_only: true,
    }]
}

#[test]
fn a_user_cannot_reach_the_host_unless_the_server_allows_it() {
    Rt::Tokio.block_on(async {
        let service = service(Config::from_env().with_roles(roles()));
        let alice = client(&service, "alice");
        let refused = unique("refused");
        let socket = vec![Mount {
            source: "/var/run/docker.sock".into(),
            target: "/var/run/docker.sock".into(),
            read_only: false,
        }];
        forbidden(
            "create with the host root",
            alice
                .query(&ContainerCreate(host_spec(&refused, root_mount(), None)))
                .await,
        );
        forbidden(
            "create with the engine socket",
            alice
                .query(&ContainerCreate(host_spec(&refused, socket, None)))
                .await,
        );
        forbidden(
            "run with the host root",
            alice
                .open(&RunInput(host_spec(&refused, root_mount(), None)))
                .await,
        );
        forbidden(
            "run on the host network",
            alice
                .open(&RunInput(host_spec(&refused, vec![], Some("host"))))
                .await,
        );
        let mut json = alice
            .subscribe(&RunInput(host_spec(&refused, vec![], Some("container:x"))))
            .await
            .unwrap();
        forbidden(
            "run in another container's network",
            json.next().await.expect("one item: the error"),
        );

        // An admin may; so may a user where the server allows host access.
        let open = Arc::new(DockerService::new(
            Docker::connect_with_local_defaults().unwrap(),
            Config::from_env()
                .with_roles(roles())
                .with_host_access(true)
                .with_user_network(UserNetwork::None),
        ));
        for docker in [client(&service, "root"), client(&open, "alice")] {
            let mut session = docker
                .open(&RunInput(host_spec(&unique("host"), root_mount(), None)))
                .await
                .unwrap();
            session.stdin.close().await.unwrap();
            let mut out = Vec::new();
            futures::io::AsyncReadExt::read_to_end(&mut session.stdout, &mut out)
                .await
                .unwrap();
            assert_eq!(session.exit.await.unwrap(), 0);
            let host = std::fs::read("/etc/hostname").unwrap();
            assert_eq!(out, host);
        }
        // The refused calls made no container.
        let made = on_engine(engine().inspect_container(&refused, None));
        assert!(made.is_err(), "a refused call made {refused}");
    });
}

#[test]
fn a_restarted_server_sweeps_only_its_own_auto_remove_leftovers() {
    Rt::Tokio.block_on(async {
        let me = format!("sweep-test-{}", std::process::id());
        let other = format!("sweep-other-{}", std::process::id());
        // The key a server keeps across its restarts.
        let key = OwnerKey::from_bytes(&OwnerKey::generate().unwrap());
        let mine = service(
            Config::from_env()
                .with_server_id(&me)
                .with_owner_key(key.clone()),
        );
        let theirs = service(Config::from_env().with_server_id(&other));
        let cleanup = Cleanup::default();
        let make = |service: &Arc<DockerService>, auto_remove: bool| {
            let docker = client(service, "root");
            let cleanup = &cleanup;
            async move {
                let mut spec = ContainerSpec::new(IMAGE, ["sleep", "3600"]);
                spec.auto_remove = auto_remove;
                // No network needed: none, so no dependence on the bridge.
                spec.network = Some("none".into());
                let created = docker.query(&ContainerCreate(spec)).await.unwrap();
                cleanup.add(&created.id);
                docker
                    .query(&ContainerStart(ContainerRef::new(&created.id)))
                    .await
                    .unwrap();
                created.id
            }
        };
        // What a `run` with autoRemove leaves when it dies with its server
        // (a real crash is in the `dockwire` command's tests, crash.rs):
        // a container the engine will not remove, with these labels.
        let left = {
            let name = unique("left");
            let mut labels = HashMap::from([
                (LABEL_MANAGED.to_owned(), "true".to_owned()),
                (LABEL_OWNER.to_owned(), "root".to_owned()),
                (LABEL_AUTO_REMOVE.to_owned(), "true".to_owned()),
                (LABEL_SERVER.to_owned(), me.clone()),
            ]);
            key.seal_labels(Kind::Container, &name, &mut labels);
            let body = bollard::models::ContainerCreateBody {
                image: Some(IMAGE.to_owned()),
                cmd: Some(vec!["sleep".to_owned(), "3600".to_owned()]),
                labels: Some(labels),
                host_config: Some(bollard::models::HostConfig {
                    network_mode: Some("none".to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let options = q::CreateContainerOptions {
                name: Some(name),
                ..Default::default()
            };
            let created = on_engine(engine().create_container(Some(options), body)).unwrap();
            cleanup.add(&created.id);
            created.id
        };
        // Still running: a `create` with autoRemove (the engine removes it
        // when it exits, as `docker run -d --rm`), one without, and
        // another server's.
        let detached = make(&mine, true).await;
        let kept = make(&mine, false).await;
        let foreign = make(&theirs, true).await;

        let restarted = service(
            Config::from_env()
                .with_server_id(&me)
                .with_owner_key(key.clone()),
        );
        let removed = restarted.sweep().await.unwrap();
        assert_eq!(removed, vec![left.clone()]);
        assert!(on_engine(engine().inspect_container(&left, None)).is_err());
        for id in [&detached, &kept, &foreign] {
            on_engine(engine().inspect_container(id, None)).unwrap();
        }
        // Nothing left to sweep the second time.
        assert!(restarted.sweep().await.unwrap().is_empty());
    });
}
