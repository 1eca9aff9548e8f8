//! Peers isolated from each other and from the host (issue 13), against
//! the real engine and the host's real packet filter: two `user` peers
//! (alice and bob; carol too where a third is needed) and an admin (root)
//! reach a server over QUIC with mutual TLS, as `dockwire serve` runs it
//! (the call log and per-peer limit around the Docker service, roles by
//! key from a trust table that tests change while it runs). Each peer has
//! an identity of its own; its key, `sha256:<fingerprint>`, owns what it
//! makes. Each test has its own server and peers (the rig is
//! `dockwire_tests::tenancy`), and asserts that the attack fails (codes,
//! messages, bytes, what answers) and what the victim still sees.
//!
//! | attack (issue 13) or rule | test |
//! |---|---|
//! | 1 another user's volume, by name | `another_users_volume_cannot_be_mounted_read_or_removed` |
//! | 2 an operator's bind volume | `an_operators_bind_volume_cannot_be_mounted_by_a_user` |
//! | 3 joining an operator's (internal) network | `an_operators_or_another_users_network_cannot_be_joined` |
//! | 3, 4 reaching other peers' containers (the admin's, another user's, published ports) | `a_users_container_cannot_reach_other_peers_containers_by_ip_or_published_port` |
//! | 5 the host through the gateway or any address | `a_users_container_cannot_reach_the_host_by_its_gateway_or_any_other_address` |
//! | 6 learning other peers' names | `another_users_objects_are_indistinguishable_from_missing_ones` |
//! | 7 a name squatting an id | `a_name_cannot_squat_another_containers_id` |
//! | 8 image labels, containers made outside dockwire | `an_image_label_or_a_container_made_outside_dockwire_grants_no_ownership` |
//! | images built from the shared one and removed beside a user | `images_built_and_removed_beside_a_user_fail_none_of_its_inspects_or_lists` |
//! | 9 pulls from the host's loopback | `a_users_pull_from_the_hosts_loopback_is_refused_before_the_engine_is_asked` |
//! | 10 `top`'s `ps` arguments | `a_users_top_takes_only_safe_ps_arguments` |
//! | 11 a removed key re-added by name as admin | `a_removed_key_readded_by_name_as_admin_gets_nothing_on_its_old_connection` |
//! | 12 NET_RAW, MKNOD, new privileges | `users_containers_have_no_new_privileges_net_raw_or_mknod` |
//! | ownership: no label on a create grants it | `a_callers_own_dockwire_labels_on_a_create_grant_nothing` |
//! | ownership: a restart, a second server on the engine | `ownership_survives_a_restart_and_is_not_shared_with_a_server_of_another_key` |
//! | ownership and role follow the key, not the name | `the_role_and_ownership_follow_the_key_not_the_name` |
//! | names are per peer | `names_are_per_peer_and_shown_as_each_users_own` |
//! | volumes: a user's own, no drivers or options | `users_make_list_and_remove_volumes_of_their_own` |
//! | networks: a network of one's own by default | `a_users_container_lands_on_its_own_network_not_the_default_bridge` |
//! | networks: users' own further networks | `users_make_use_and_remove_networks_of_their_own` |
//! | 3, 4 while Docker rewrites its `FORWARD` rules (or an operator accepts all) | `other_peers_containers_stay_unreachable_while_the_forward_chain_accepts_everything` |
//! | networks: `--user-network isolated\|internal\|none` | `internal_mode_has_no_way_out_and_none_mode_no_interface_but_loopback` |
//! | networks: rules go with the network | `removing_a_users_network_removes_its_rules_and_leaves_nothing` |
//! | pulls: allowed registries only | `users_pull_only_from_allowed_registries` |
//! | pulls: no engine error body passed back | `an_allowed_registrys_answer_is_not_passed_back_to_users` |
//! | roles: trust changes close connections | `a_connection_whose_keys_role_changes_is_refused_and_closed` |
//! | hardening: the operator's capability set | `the_operator_chooses_the_capabilities_users_lose` |
//! | hardening: no host path in a user's error | `no_host_path_is_in_an_error_a_user_sees` |
//! | the audit line | `every_call_leaves_an_audit_line_with_key_address_object_and_outcome` |
//! | exec signals through the engine: they reach the process | `exec_signal_through_the_engine_reaches_the_process` |
//! | … a non-root user's process | `exec_signal_through_the_engine_reaches_a_non_root_users_process` |
//! | … only its own exec | `a_signal_through_the_engine_reaches_only_its_own_exec` |
//! | … a cancelled exec is killed | `a_cancelled_exec_is_killed_through_the_engine` |
//! | … a dead call's exec, by the sweep | `a_dead_calls_exec_is_killed_through_the_engine_by_the_sweep` |
//! | … a caller cannot set the marker | `a_callers_dockwire_exec_is_refused_and_the_servers_marker_is_fresh` |
//!
//! Everything a test makes carries its label `dockwire-test=<label>` or
//! is owned by one of its keys; `Tenancy::finish` fails the test if any
//! of it is left, and the rig removes it either way, with its users'
//! networks and their host rules.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters as q;
use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::{
    Config, DockerClient, DockerService, ExecSignals, OwnerKey, Role, UserNetwork,
};
use dockwire_service::ClientError;
use dockwire_service::quic::Identity;
use dockwire_tests::docker::{
    Cleanup, IMAGE, REGISTRY_IMAGE, engine, on_engine, on_podman, read_until, runs,
    skipped_on_podman, unique,
};
use dockwire_tests::exec_signals::*;
use dockwire_tests::reach::*;
use dockwire_tests::tenancy::*;
use dockwire_tests::user_networks::{ForwardAccepted, ForwardFenceLifted, rules_for};
use dockwire_tests::{Rt, sleep_ms};
use futures::StreamExt;
use futures::io::{AsyncReadExt, AsyncWriteExt};

// ------------------------------------------- attacks on other peers' objects

/// Attack 1: mounting another user's named volume, by its name or by its
/// engine name, gives the mounter a fresh volume of its own; alice's
/// files are neither read nor overwritten, and bob cannot remove them.
#[test]
fn another_users_volume_cannot_be_mounted_read_or_removed() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let volume = t
            .alice
            .query(&VolumeCreate {
                name: Some("data".into()),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(volume.name, "data");
        let mut write = t.spec(&[
            "sh",
            "-c",
            "echo alice-secret > /data/secret && cat /data/secret",
        ]);
        write.mounts = vec![mount("data", "/data")];
        assert_eq!(
            run(&t.alice, write).await.unwrap(),
            ("alice-secret\n".into(), 0)
        );
        let engine_names = volumes_of(&t.root, &t.key("alice")).await;
        assert_eq!(engine_names.len(), 1, "{engine_names:?}");
        let engine_name = engine_names[0].clone();
        assert!(engine_name.starts_with("dw-") && engine_name.ends_with("-data"));

        // bob sees none of alice's volumes, and cannot remove them.
        assert!(own_volumes(&t.bob).await.is_empty());
        for reference in ["data", engine_name.as_str()] {
            missing(
                "bob removes alice's volume",
                "volume",
                reference,
                t.bob.query(&remove_volume(reference)).await,
            );
            missing(
                "bob inspects alice's volume",
                "volume",
                reference,
                t.bob
                    .query(&VolumeInspect {
                        volume: reference.into(),
                    })
                    .await,
            );
        }
        // Her inspect: her name, and no host path.
        let seen = t
            .alice
            .query(&VolumeInspect {
                volume: "data".into(),
            })
            .await
            .unwrap();
        assert_eq!((seen.name.as_str(), seen.mountpoint.as_str()), ("data", ""));
        // bob's mounts of those names are his own, fresh volumes: empty,
        // and what he writes stays in them.
        for reference in ["data", engine_name.as_str()] {
            let mut steal = t.spec(&["sh", "-c", "ls -A /data; echo bob > /data/secret"]);
            steal.mounts = vec![mount(reference, "/data")];
            assert_eq!(
                run(&t.bob, steal).await.unwrap(),
                (String::new(), 0),
                "{reference}"
            );
        }

        // alice's file is intact.
        let mut read = t.spec(&["cat", "/data/secret"]);
        read.mounts = vec![mount("data", "/data")];
        assert_eq!(
            run(&t.alice, read).await.unwrap(),
            ("alice-secret\n".into(), 0)
        );
        assert_eq!(
            volumes_of(&t.root, &t.key("alice")).await,
            vec![engine_name.clone()]
        );

        t.alice.query(&remove_volume("data")).await.unwrap();
        for reference in ["data", engine_name.as_str()] {
            t.bob.query(&remove_volume(reference)).await.unwrap();
        }
        t.finish();
    });
}

/// Attack 2: an operator's volume with bind driver options (a host
/// directory) is out of users' reach: a user may not make one, and a
/// user's mount of its name is a fresh volume of the user's own. The host
/// directory is unchanged: nothing read, nothing planted.
#[test]
fn an_operators_bind_volume_cannot_be_mounted_by_a_user() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let host = HostDir::new();
        let dir = host.0.clone();
        std::fs::write(dir.join("host-secret"), b"operator\n").unwrap();
        let opts = BTreeMap::from([
            ("type".to_owned(), "none".to_owned()),
            ("o".to_owned(), "bind".to_owned()),
            ("device".to_owned(), dir.to_string_lossy().into_owned()),
        ]);
        let name = unique("opvol");
        t.root
            .query(&VolumeCreate {
                name: Some(name.clone()),
                driver_opts: opts.clone(),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        // The volume is the host directory, to the operator.
        let mut peek = t.spec(&["cat", "/v/host-secret"]);
        peek.mounts = vec![mount(&name, "/v")];
        assert_eq!(run(&t.root, peek).await.unwrap(), ("operator\n".into(), 0));

        // A user may not make such a volume.
        refused(
            "a user's bind volume",
            ErrorCode::FORBIDDEN,
            t.alice
                .query(&VolumeCreate {
                    name: Some("mine".into()),
                    driver_opts: opts,
                    labels: t.labels(),
                    ..Default::default()
                })
                .await,
        );
        // A user's mount of the operator's volume reaches a fresh volume of
        // its own: the host's file is not there, and what it plants (a
        // setuid file) lands in its own volume.
        let mut plant = t.spec(&[
            "sh",
            "-c",
            "ls -A /v; cp /bin/sh /v/planted && chmod 4755 /v/planted",
        ]);
        plant.mounts = vec![mount(&name, "/v")];
        assert_eq!(run(&t.alice, plant).await.unwrap(), (String::new(), 0));

        let mut entries: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        assert_eq!(entries, vec!["host-secret".to_owned()]);
        assert_eq!(
            std::fs::read(dir.join("host-secret")).unwrap(),
            b"operator\n"
        );
        // Her list shows her own volume only, under her name.
        assert_eq!(own_volumes(&t.alice).await, vec![name.clone()]);

        t.alice.query(&remove_volume(&name)).await.unwrap();
        missing(
            "alice removes the operator's volume",
            "volume",
            &name,
            t.alice.query(&remove_volume(&name)).await,
        );
        t.root.query(&remove_volume(&name)).await.unwrap();
        drop(host);
        assert!(!dir.exists());
        t.finish();
    });
}

/// Attack 3 (joining): an operator's network, internal included, cannot
/// be joined by a user's container, by name or id, at create or by
/// connect; nor can a user connect its container to another user's
/// network, or another user's container to its own. The operator's
/// network keeps only the operator's container.
#[test]
fn an_operators_or_another_users_network_cannot_be_joined() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let opnet = unique("opnet");
        let op = t
            .root
            .query(&NetworkCreate {
                name: opnet.clone(),
                internal: true,
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut on_opnet = t.spec(&[]);
        on_opnet.network = Some(opnet.clone());
        let operators = t.sleeper(&t.root, on_opnet).await;

        for reference in [opnet.as_str(), op.id.as_str(), &op.id[..4]] {
            let mut join = t.spec(&["true"]);
            join.network = Some(reference.into());
            missing(
                "alice creates on the operator's network",
                "network",
                reference,
                t.alice.query(&ContainerCreate(join.clone())).await,
            );
            missing(
                "alice runs on the operator's network",
                "network",
                reference,
                run(&t.alice, join).await,
            );
        }
        let mut quiet = t.spec(&[]);
        quiet.network = Some("none".into());
        let hers = t.sleeper(&t.alice, quiet.clone()).await;
        for reference in [opnet.as_str(), op.id.as_str()] {
            missing(
                "alice connects to the operator's network",
                "network",
                reference,
                t.alice
                    .query(&NetworkConnect(member(reference, &hers)))
                    .await,
            );
            missing(
                "alice disconnects the operator's container",
                "network",
                reference,
                t.alice
                    .query(&NetworkDisconnect(member(reference, &operators)))
                    .await,
            );
            missing(
                "alice removes the operator's network",
                "network",
                reference,
                t.alice
                    .query(&NetworkRemove {
                        network: reference.into(),
                    })
                    .await,
            );
        }
        let listed = t.alice.query(&NetworkList::default()).await.unwrap();
        assert!(listed.is_empty(), "alice sees {listed:?}");

        // bob's network and container are as far from alice.
        let bobs_net = t
            .bob
            .query(&NetworkCreate {
                name: "bnet".into(),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        let his = t.sleeper(&t.bob, quiet).await;
        for reference in ["bnet", bobs_net.id.as_str()] {
            missing(
                "alice connects to bob's network",
                "network",
                reference,
                t.alice
                    .query(&NetworkConnect(member(reference, &hers)))
                    .await,
            );
        }
        t.alice
            .query(&NetworkCreate {
                name: "anet".into(),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        missing(
            "alice connects bob's container to her network",
            "container",
            &his,
            t.alice.query(&NetworkConnect(member("anet", &his))).await,
        );

        // The operator's network has the operator's container, only.
        let inspected =
            on_engine(engine().inspect_network(&op.id, None::<q::InspectNetworkOptions>)).unwrap();
        let members: Vec<String> = inspected
            .containers
            .unwrap_or_default()
            .into_keys()
            .collect();
        assert_eq!(members, vec![operators.clone()]);
        let bobs =
            on_engine(engine().inspect_network(&bobs_net.id, None::<q::InspectNetworkOptions>))
                .unwrap();
        assert!(bobs.containers.unwrap_or_default().is_empty());

        t.remove(&t.root, &operators).await;
        t.remove(&t.alice, &hers).await;
        t.remove(&t.bob, &his).await;
        t.root
            .query(&NetworkRemove { network: opnet })
            .await
            .unwrap();
        t.alice
            .query(&NetworkRemove {
                network: "anet".into(),
            })
            .await
            .unwrap();
        t.bob
            .query(&NetworkRemove {
                network: "bnet".into(),
            })
            .await
            .unwrap();
        t.finish();
    });
}

/// Attack 6: to bob, alice's container, volume and network are exactly
/// what a missing one is, whatever he names them by (one-character id
/// prefixes, full ids, her names, the engine's names): the same code,
/// and a message naming only his reference.
#[test]
fn another_users_objects_are_indistinguishable_from_missing_ones() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let mut web = t.spec(&[]);
        web.name = Some("web".into());
        let hers = t.sleeper(&t.alice, web).await;
        let net = t
            .alice
            .query(&NetworkCreate {
                name: "net".into(),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        t.alice
            .query(&VolumeCreate {
                name: Some("data".into()),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        let engine_name = t
            .root
            .query(&ContainerInspect(ContainerRef::new(&hers)))
            .await
            .unwrap()
            .name
            .unwrap();
        let engine_name = engine_name.trim_start_matches('/');

        let hex: Vec<String> = "0123456789abcdef".chars().map(String::from).collect();
        let mut references: Vec<&str> = hex.iter().map(String::as_str).collect();
        references.extend([
            hers.as_str(),
            &hers[..12],
            "web",
            engine_name,
            "no-such-container",
        ]);
        for reference in &references {
            missing(
                "bob inspects",
                "container",
                reference,
                t.bob
                    .query(&ContainerInspect(ContainerRef::new(*reference)))
                    .await,
            );
            missing(
                "bob execs",
                "container",
                reference,
                exec(&t.bob, reference, &["true"]).await,
            );
        }
        for reference in ["data", "no-such-volume"] {
            missing(
                "bob removes a volume",
                "volume",
                reference,
                t.bob.query(&remove_volume(reference)).await,
            );
        }
        let mut networks: Vec<&str> = hex.iter().map(String::as_str).collect();
        networks.extend([net.id.as_str(), "net", "no-such-network", "bridge"]);
        for reference in networks {
            missing(
                "bob removes a network",
                "network",
                reference,
                t.bob
                    .query(&NetworkRemove {
                        network: reference.into(),
                    })
                    .await,
            );
        }
        // His lists are empty.
        let all = ContainerList {
            all: true,
            filters: HashMap::new(),
        };
        assert!(t.bob.query(&all).await.unwrap().is_empty());
        assert!(own_volumes(&t.bob).await.is_empty());
        assert!(
            t.bob
                .query(&NetworkList::default())
                .await
                .unwrap()
                .is_empty()
        );
        // A list filter naming her container does not tell it exists.
        let since = ContainerList {
            all: true,
            filters: HashMap::from([("since".to_owned(), vec![hers.clone()])]),
        };
        missing(
            "bob lists since hers",
            "container",
            &hers,
            t.bob.query(&since).await,
        );

        // alice's container still answers her.
        assert_eq!(
            exec(&t.alice, "web", &["echo", "mine"]).await.unwrap(),
            ("mine\n".into(), 0)
        );

        t.remove(&t.alice, "web").await;
        t.alice
            .query(&NetworkRemove {
                network: "net".into(),
            })
            .await
            .unwrap();
        t.alice.query(&remove_volume("data")).await.unwrap();
        t.finish();
    });
}

/// Attack 7: a user cannot name a container like another's id, and the
/// names it may give never shadow an id: the victim's `exec` by its short
/// id (or a shorter prefix another user took as a name) reaches the
/// victim's container, and so does an admin's `cp` into it.
#[test]
fn a_name_cannot_squat_another_containers_id() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let hers = t.sleeper(&t.alice, t.spec(&[])).await;
        let short = &hers[..12];
        for name in [short, hers.as_str()] {
            let mut squat = t.spec(&["true"]);
            squat.name = Some(name.into());
            refused(
                "bob names a container like her id",
                ErrorCode::INVALID_INPUT,
                t.bob.query(&ContainerCreate(squat)).await,
            );
        }
        // A shorter prefix is a name bob may give: his own.
        let mut near = t.spec(&[]);
        near.name = Some(short[..11].into());
        let his = t.sleeper(&t.bob, near).await;

        for reference in [short, &short[..11]] {
            let reached = exec(&t.alice, reference, &["hostname"]).await.unwrap();
            assert_eq!(
                reached,
                (format!("{short}\n"), 0),
                "alice's exec {reference}"
            );
        }
        let reached = exec(&t.bob, &short[..11], &["hostname"]).await.unwrap();
        assert_eq!(
            reached,
            (format!("{}\n", &his[..12]), 0),
            "bob's own by name"
        );

        // The admin's cp into her short id lands in her container.
        let mut put = t
            .root
            .open(&ArchivePut {
                id: short.into(),
                path: "/tmp".into(),
            })
            .await
            .unwrap();
        put.stdin
            .write_all(&tar_of("from-root", b"landed\n"))
            .await
            .unwrap();
        put.stdin.close().await.unwrap();
        assert_eq!(put.exit.await.unwrap(), 0);
        let landed = exec(&t.alice, short, &["cat", "/tmp/from-root"])
            .await
            .unwrap();
        assert_eq!(landed, ("landed\n".into(), 0));
        let (_, code) = exec(&t.bob, &his, &["test", "-e", "/tmp/from-root"])
            .await
            .unwrap();
        assert_eq!(code, 1, "the admin's file landed in bob's container");
        let info = t
            .root
            .query(&ContainerInspect(ContainerRef::new(&short[..11])))
            .await
            .unwrap();
        assert_eq!(info.id.as_deref(), Some(hers.as_str()));

        t.remove(&t.alice, &hers).await;
        t.remove(&t.bob, &his).await;
        t.finish();
    });
}

/// Attack 8: an image's `dockwire.*` labels (owner, auto-remove, server,
/// even a seal) and a container made outside dockwire grant nothing: the
/// named owner does not see it nor reach it, the crash sweep of the
/// server the labels name does not remove it, and a container made from
/// that image through dockwire belongs to whoever made it.
#[test]
fn an_image_label_or_a_container_made_outside_dockwire_grants_no_ownership() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let alice = &t.key("alice");
        let tag = format!("dockwire-test-forged:{}", unique("img").replace('-', ""));
        let dockerfile = format!(
            "FROM {IMAGE}\nLABEL dockwire.managed=true dockwire.owner={alice} \
             dockwire.auto-remove=true dockwire.server={} dockwire.seal={} \
             dockwire-test={}\n",
            t.server_id,
            "ab".repeat(32),
            t.label
        );
        build_outside(&tag, &dockerfile);
        let image = ImageCleanup(tag.clone());

        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1;
        let name = unique("outside");
        let body = bollard::models::ContainerCreateBody {
            image: Some(tag.clone()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            ..Default::default()
        };
        let options = q::CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let outside = on_engine(engine().create_container(Some(options), body))
            .unwrap()
            .id;
        on_engine(engine().start_container(&outside, None::<q::StartContainerOptions>)).unwrap();

        let all = ContainerList {
            all: true,
            filters: HashMap::new(),
        };
        let listed = t.alice.query(&all).await.unwrap();
        assert!(
            listed.iter().all(|c| c.id.as_deref() != Some(&outside)),
            "alice lists it"
        );
        for reference in [outside.as_str(), name.as_str()] {
            missing(
                "alice inspects",
                "container",
                reference,
                t.alice
                    .query(&ContainerInspect(ContainerRef::new(reference)))
                    .await,
            );
            missing(
                "alice execs",
                "container",
                reference,
                exec(&t.alice, reference, &["true"]).await,
            );
        }
        // Nor do its events reach her.
        let until = since + 3;
        while std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            <= until
        {
            dockwire_tests::sleep_ms(200).await;
        }
        let mut events = t
            .alice
            .subscribe(&Events {
                since: Some(since.to_string()),
                until: Some(until.to_string()),
                filters: HashMap::new(),
            })
            .await
            .unwrap();
        while let Some(event) = events.next().await {
            let event = event.unwrap();
            let id = event.actor.and_then(|a| a.id).unwrap_or_default();
            assert_ne!(id, outside, "alice saw an event of the forged container");
        }

        // The sweep of the server its labels name leaves it.
        let restarted = DockerService::new(
            Docker::connect_with_local_defaults().unwrap(),
            Config::from_env().with_server_id(&t.server_id),
        );
        let swept = restarted.sweep().await.unwrap();
        assert!(
            !swept.contains(&outside),
            "the sweep removed the forged container"
        );
        let running = on_engine(engine().inspect_container(&outside, None)).unwrap();
        assert_eq!(running.state.unwrap().running, Some(true));

        // Made through dockwire by bob, the image's labels give way to his.
        let mut spec = t.spec(&[]);
        spec.image = tag.clone();
        let bobs = t.sleeper(&t.bob, spec).await;
        let labels = t
            .root
            .query(&ContainerInspect(ContainerRef::new(&bobs)))
            .await
            .unwrap()
            .config
            .unwrap()
            .labels
            .unwrap();
        assert_eq!(labels[LABEL_OWNER], t.key("bob"));
        assert_eq!(labels[LABEL_AUTO_REMOVE], "false");
        missing(
            "alice inspects bob's",
            "container",
            &bobs,
            t.alice
                .query(&ContainerInspect(ContainerRef::new(&bobs)))
                .await,
        );
        t.bob
            .query(&ContainerInspect(ContainerRef::new(&bobs)))
            .await
            .unwrap();

        t.remove(&t.bob, &bobs).await;
        t.remove(&t.root, &outside).await;
        t.finish();
        drop(image);
    });
}

// -------------------------------------------------- neighbours' images

/// How many times, at least, the user inspects the shared image and
/// lists images while two builders make and remove images from it.
const ROUNDS: usize = 200;
/// How many images, at least, the builders make and remove meanwhile.
const CHURNED: usize = 10;

/// Sets its flag when dropped: a failing test's builders stop too.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Images built from the shared image and removed again beside a user
/// (another peer's or the operator's, here two builders outside
/// dockwire) fail none of the user's image inspects and lists. Podman 4.3
/// fails an inspect or list that reads an image removed meanwhile (a 500,
/// `image not known`); the service asks again.
#[test]
fn images_built_and_removed_beside_a_user_fail_none_of_its_inspects_or_lists() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let stop = Arc::new(AtomicBool::new(false));
        let stopper = StopOnDrop(stop.clone());
        let churned = Arc::new(AtomicUsize::new(0));
        let builders = (0..2)
            .map(|builder| {
                let (label, stop, churned) = (t.label.clone(), stop.clone(), churned.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let n = churned.fetch_add(1, Ordering::Relaxed);
                        let tag = format!(
                            "dockwire-test-churn:{}",
                            unique(&format!("b{builder}n{n}")).replace('-', "")
                        );
                        let image = ImageCleanup(tag.clone());
                        let dockerfile =
                            format!("FROM {IMAGE}\nLABEL dockwire-test={label} n={n}\n");
                        build_outside(&tag, &dockerfile);
                        drop(image);
                    }
                })
            })
            .collect::<Vec<_>>();
        let shared = ImageInspect(ImageRef {
            image: IMAGE.into(),
        });
        let all = ImageList::default();
        let (mut rounds, mut failed) = (0, Vec::new());
        // A builder that stopped on its own failed: its join says why.
        while (rounds < ROUNDS || churned.load(Ordering::Relaxed) < CHURNED + 2)
            && !builders.iter().any(|b| b.is_finished())
        {
            let (inspected, listed) = futures::join!(t.alice.query(&shared), t.alice.query(&all));
            rounds += 1;
            match inspected {
                Ok(details) => assert!(details.id.is_some_and(|id| id.starts_with("sha256:"))),
                Err(e) => failed.push(format!("inspect: {e}")),
            }
            match listed {
                Ok(images) => assert!(
                    images
                        .iter()
                        .any(|i| i.repo_tags.iter().any(|tag| tag == IMAGE)),
                    "the shared image is not listed: {images:?}"
                ),
                Err(e) => failed.push(format!("list: {e}")),
            }
        }
        drop(stopper);
        for builder in builders {
            builder
                .join()
                .expect("the builder built and removed its images");
        }
        assert!(rounds >= ROUNDS, "{rounds} rounds");
        assert!(
            failed.is_empty(),
            "{} of {} calls failed: {failed:#?}",
            failed.len(),
            2 * rounds
        );
        t.finish();
    });
}

// ----------------------------------------------------- ownership and names
/// Ownership cannot be forged by the caller: `dockwire.*` labels on a
/// user's create (an owner naming bob, a seal, a server, a label of its
/// own) are dropped, so the container, volume and network are alice's,
/// sealed as hers, carrying no `dockwire.*` label she wrote; bob sees and
/// reaches none of them, and alice still has all three.
#[test]
fn a_callers_own_dockwire_labels_on_a_create_grant_nothing() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let (alice_key, bob_key) = (t.key("alice"), t.key("bob"));
        let mut forged = t.labels();
        forged.extend([
            (LABEL_OWNER.to_owned(), bob_key.clone()),
            ("dockwire.seal".to_owned(), "ab".repeat(32)),
            (LABEL_SERVER.to_owned(), "forged-server".to_owned()),
            ("dockwire.forged".to_owned(), "yes".to_owned()),
        ]);
        let mut spec = t.spec(&[]);
        spec.name = Some("forged".into());
        spec.labels = forged.clone();
        let hers = t.sleeper(&t.alice, spec).await;
        t.alice
            .query(&VolumeCreate {
                name: Some("forged".into()),
                labels: forged.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        t.alice
            .query(&NetworkCreate {
                name: "forged".into(),
                labels: forged.clone(),
                ..Default::default()
            })
            .await
            .unwrap();

        // On the engine: alice's, sealed, none of her dockwire.* labels.
        let filters = || {
            HashMap::from([(
                "label".to_owned(),
                vec![format!("dockwire-test={}", t.label)],
            )])
        };
        let docker = engine();
        let mut labelled: Vec<(String, HashMap<String, String>)> = Vec::new();
        let containers = on_engine(docker.list_containers(Some(q::ListContainersOptions {
            all: true,
            filters: Some(filters()),
            ..Default::default()
        })))
        .unwrap();
        labelled.extend(
            containers
                .into_iter()
                .map(|c| ("container".into(), c.labels.unwrap_or_default())),
        );
        let volumes = on_engine(docker.list_volumes(Some(q::ListVolumesOptions {
            filters: Some(filters()),
        })))
        .unwrap();
        labelled.extend(
            volumes
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|v| ("volume".into(), v.labels)),
        );
        let networks = on_engine(docker.list_networks(Some(q::ListNetworksOptions {
            filters: Some(filters()),
        })))
        .unwrap();
        labelled.extend(
            networks
                .into_iter()
                .map(|n| ("network".into(), n.labels.unwrap_or_default())),
        );
        let kinds: Vec<&str> = labelled.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["container", "volume", "network"]);
        for (kind, labels) in &labelled {
            assert_eq!(
                labels.get(LABEL_OWNER),
                Some(&alice_key),
                "{kind}: {labels:?}"
            );
            assert_ne!(
                labels.get("dockwire.seal"),
                Some(&"ab".repeat(32)),
                "{kind}"
            );
            assert!(
                !labels.contains_key("dockwire.forged"),
                "{kind}: {labels:?}"
            );
            assert_ne!(
                labels.get(LABEL_SERVER).map(String::as_str),
                Some("forged-server"),
                "{kind}"
            );
        }

        // bob has none of them.
        assert!(listed_ids(&t.bob).await.is_empty());
        assert!(own_volumes(&t.bob).await.is_empty());
        assert!(
            t.bob
                .query(&NetworkList::default())
                .await
                .unwrap()
                .is_empty()
        );
        for reference in ["forged", hers.as_str()] {
            missing(
                "bob inspects her container",
                "container",
                reference,
                t.bob
                    .query(&ContainerInspect(ContainerRef::new(reference)))
                    .await,
            );
        }
        missing(
            "bob removes her volume",
            "volume",
            "forged",
            t.bob.query(&remove_volume("forged")).await,
        );
        missing(
            "bob removes her network",
            "network",
            "forged",
            t.bob
                .query(&NetworkRemove {
                    network: "forged".into(),
                })
                .await,
        );

        // alice still has all three.
        assert_eq!(
            exec(&t.alice, "forged", &["echo", "mine"]).await.unwrap(),
            ("mine\n".into(), 0)
        );
        assert_eq!(own_volumes(&t.alice).await, ["forged"]);
        // (Her default network, made for her container, is the other.)
        let listed = t.alice.query(&NetworkList::default()).await.unwrap();
        let names: Vec<&str> = listed.iter().filter_map(|n| n.name.as_deref()).collect();
        assert!(names.contains(&"forged"), "{names:?}");
        assert_eq!(names.len(), 2, "{names:?}");

        t.remove(&t.alice, &hers).await;
        t.alice.query(&remove_volume("forged")).await.unwrap();
        t.alice
            .query(&NetworkRemove {
                network: "forged".into(),
            })
            .await
            .unwrap();
        t.finish();
    });
}

/// Ownership is the server's key's: a restarted server with the same
/// owner key gives alice back her container and volume (bob still gets
/// nothing), and a second server on the same engine with a key of its
/// own gives alice nothing of them: to it they are nobody's, as missing
/// as anything else, and alice's own server still serves them to her.
#[test]
fn ownership_survives_a_restart_and_is_not_shared_with_a_server_of_another_key() {
    Rt::Tokio.block_on(async {
        let bytes = OwnerKey::generate().unwrap();
        let t = Tenancy::with(Config::from_env().with_owner_key(OwnerKey::from_bytes(&bytes)));
        let mut web = t.spec(&[]);
        web.name = Some("web".into());
        let hers = t.sleeper(&t.alice, web).await;
        t.alice
            .query(&VolumeCreate {
                name: Some("data".into()),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();

        // Restarted: the same key.
        let restarted = t.serve(Config::from_env().with_owner_key(OwnerKey::from_bytes(&bytes)));
        let (alice, bob) = (
            DockerClient::new(restarted.client("alice")),
            DockerClient::new(restarted.client("bob")),
        );
        assert_eq!(
            exec(&alice, "web", &["echo", "still mine"]).await.unwrap(),
            ("still mine\n".into(), 0)
        );
        assert_eq!(listed_ids(&alice).await, std::slice::from_ref(&hers));
        assert_eq!(own_volumes(&alice).await, ["data"]);
        missing(
            "bob inspects her web after a restart",
            "container",
            "web",
            bob.query(&ContainerInspect(ContainerRef::new("web"))).await,
        );

        // A second server on the engine, with an owner key of its own.
        let second = t.serve(Config::from_env());
        let alice_there = DockerClient::new(second.client("alice"));
        assert!(listed_ids(&alice_there).await.is_empty());
        assert!(own_volumes(&alice_there).await.is_empty());
        for reference in ["web", hers.as_str()] {
            missing(
                "alice inspects hers on another server",
                "container",
                reference,
                alice_there
                    .query(&ContainerInspect(ContainerRef::new(reference)))
                    .await,
            );
            missing(
                "alice execs in hers on another server",
                "container",
                reference,
                exec(&alice_there, reference, &["true"]).await,
            );
        }
        missing(
            "alice removes her volume on another server",
            "volume",
            "data",
            alice_there.query(&remove_volume("data")).await,
        );

        // Her own server still serves them to her.
        assert_eq!(
            exec(&t.alice, "web", &["echo", "mine"]).await.unwrap(),
            ("mine\n".into(), 0)
        );
        assert_eq!(own_volumes(&t.alice).await, ["data"]);
        t.remove(&t.alice, "web").await;
        t.alice.query(&remove_volume("data")).await.unwrap();
        t.finish();
    });
}

/// Names are per peer: alice and bob may both have a `web`, each reaches
/// its own by it, and each sees its own name (in inspect, list, events
/// and errors), never the engine's. A container made without a name gets
/// a readable one.
#[test]
fn names_are_per_peer_and_shown_as_each_users_own() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1;
        let mut web = t.spec(&[]);
        web.name = Some("web".into());
        let hers = t.sleeper(&t.alice, web.clone()).await;
        let his = t.sleeper(&t.bob, web.clone()).await;
        assert_ne!(hers, his);
        for (who, id) in [(&t.alice, &hers), (&t.bob, &his)] {
            let info = who
                .query(&ContainerInspect(ContainerRef::new("web")))
                .await
                .unwrap();
            assert_eq!(info.id.as_ref(), Some(id));
            assert_eq!(info.name.as_deref(), Some("/web"));
            let listed = who
                .query(&ContainerList {
                    all: true,
                    filters: HashMap::new(),
                })
                .await
                .unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].names.as_deref(), Some(&["/web".to_owned()][..]));
        }
        // A name filter anchored on her name finds hers.
        for pattern in ["^web$", "^/web$", "web"] {
            let listed = t
                .alice
                .query(&ContainerList {
                    all: true,
                    filters: HashMap::from([("name".to_owned(), vec![pattern.to_owned()])]),
                })
                .await
                .unwrap();
            assert_eq!(listed.len(), 1, "{pattern}");
            assert_eq!(listed[0].id.as_ref(), Some(&hers), "{pattern}");
        }
        let engine_name = t
            .root
            .query(&ContainerInspect(ContainerRef::new(&hers)))
            .await
            .unwrap()
            .name
            .unwrap();
        assert!(
            engine_name.starts_with("/dw-") && engine_name.ends_with("-web"),
            "{engine_name}"
        );
        let mut stats = t
            .alice
            .subscribe(&ContainerStats {
                id: "web".into(),
                stream: false,
            })
            .await
            .unwrap();
        let sample = stats.next().await.unwrap().unwrap();
        assert_eq!(sample.name.as_deref(), Some("/web"));
        assert_eq!(sample.id.as_ref(), Some(&hers));

        let message = refused(
            "alice's second web",
            CONFLICT,
            t.alice.query(&ContainerCreate(web)).await,
        );
        assert!(!message.contains("dw-"), "{message}");
        assert!(message.contains("\"/web\""), "{message}");

        let unnamed = t.sleeper(&t.alice, t.spec(&[])).await;
        let name = t
            .alice
            .query(&ContainerInspect(ContainerRef::new(&unnamed)))
            .await
            .unwrap()
            .name
            .unwrap();
        let name = name.trim_start_matches('/');
        assert_eq!(name.split('-').count(), 3, "{name}");
        assert!(!name.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert_eq!(
            exec(&t.alice, name, &["echo", "by name"]).await.unwrap(),
            ("by name\n".into(), 0)
        );

        // Her events name her container as she does.
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        let mut events = t
            .alice
            .subscribe(&Events {
                since: Some(since.to_string()),
                until: Some(until.to_string()),
                filters: HashMap::new(),
            })
            .await
            .unwrap();
        let mut started = Vec::new();
        while let Some(event) = events.next().await {
            let actor = event.unwrap().actor.unwrap();
            assert_ne!(actor.id.as_ref(), Some(&his), "alice saw bob's event");
            let attributes = actor.attributes.unwrap_or_default();
            started.push(attributes.get("name").cloned().unwrap_or_default());
        }
        assert!(started.iter().any(|n| n == "web"), "{started:?}");
        assert!(started.iter().all(|n| !n.starts_with("dw-")), "{started:?}");

        t.remove(&t.alice, "web").await;
        t.remove(&t.alice, &unnamed).await;
        t.remove(&t.bob, "web").await;
        t.finish();
    });
}

/// Users make volumes of their own (by name, without one, or by mounting
/// a new name), list and remove only those, and may not use drivers or
/// driver options.
#[test]
fn users_make_list_and_remove_volumes_of_their_own() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let made = t
            .alice
            .query(&VolumeCreate {
                name: Some("made".into()),
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(made.name, "made");
        assert_eq!(made.mountpoint, "", "a host path shown to a user");
        let unnamed = t
            .alice
            .query(&VolumeCreate {
                labels: t.labels(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(unnamed.name.split('-').count(), 3, "{}", unnamed.name);

        let mut write = t.spec(&["sh", "-c", "echo kept > /v/file"]);
        write.mounts = vec![mount("fresh", "/v")];
        run(&t.alice, write).await.unwrap();
        let mut read = t.spec(&["cat", "/v/file"]);
        read.mounts = vec![mount("fresh", "/v")];
        assert_eq!(run(&t.alice, read).await.unwrap(), ("kept\n".into(), 0));

        // A container's mounts show her volume's name, not its host path.
        let mut mounted = t.spec(&["true"]);
        mounted.mounts = vec![mount("fresh", "/v")];
        let created = t.alice.query(&ContainerCreate(mounted)).await.unwrap();
        let info = t
            .alice
            .query(&ContainerInspect(ContainerRef::new(&created.id)))
            .await
            .unwrap();
        let mounts = info.mounts.unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].name.as_deref(), Some("fresh"));
        assert_eq!(mounts[0].source, None);
        t.remove(&t.alice, &created.id).await;

        let mut expected = vec!["fresh".to_owned(), "made".to_owned(), unnamed.name.clone()];
        expected.sort();
        assert_eq!(own_volumes(&t.alice).await, expected);
        assert!(own_volumes(&t.bob).await.is_empty());

        for (what, input) in [
            (
                "a driver",
                VolumeCreate {
                    name: Some("x".into()),
                    driver: Some("nfs".into()),
                    ..Default::default()
                },
            ),
            (
                "driver options",
                VolumeCreate {
                    name: Some("x".into()),
                    driver_opts: BTreeMap::from([("size".to_owned(), "1m".to_owned())]),
                    ..Default::default()
                },
            ),
        ] {
            refused(what, ErrorCode::FORBIDDEN, t.alice.query(&input).await);
        }
        assert_eq!(
            own_volumes(&t.alice).await,
            expected,
            "a refused create made one"
        );

        for name in &expected {
            t.alice.query(&remove_volume(name)).await.unwrap();
            missing(
                "removed twice",
                "volume",
                name,
                t.alice.query(&remove_volume(name)).await,
            );
        }
        t.finish();
    });
}

/// Users make networks of their own (internal ones too), run and connect
/// their own containers on them, and remove them; names are per peer, and
/// driver options are an admin's.
#[test]
fn users_make_use_and_remove_networks_of_their_own() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let create = |internal| NetworkCreate {
            name: "net".into(),
            internal,
            labels: t.labels(),
            ..Default::default()
        };
        let hers = t.alice.query(&create(true)).await.unwrap();
        refused("a second net", CONFLICT, t.alice.query(&create(true)).await);
        let his = t.bob.query(&create(false)).await.unwrap();
        assert_ne!(hers.id, his.id);
        // Every user network is a bridge fenced off the host, as the
        // default one: its interface `dw` + 12 hex, with dockwire's rule.
        let (her_bridge, his_bridge) = (bridge_of(&hers.id), bridge_of(&his.id));
        for bridge in [&her_bridge, &his_bridge] {
            assert!(bridge.starts_with("dw") && bridge.len() == 14, "{bridge:?}");
            assert!(!rules_for(bridge).is_empty(), "no rule for {bridge}");
        }
        let listed = t.alice.query(&NetworkList::default()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name.as_deref(), Some("net"));
        assert_eq!(listed[0].id.as_ref(), Some(&hers.id));
        assert_eq!(listed[0].internal, Some(true));

        let mut on_net = t.spec(&[]);
        on_net.network = Some("net".into());
        let first = t.sleeper(&t.alice, on_net).await;
        let alice = &t.alice;
        let networks = |id: String| async move {
            let info = alice
                .query(&ContainerInspect(ContainerRef::new(&id)))
                .await
                .unwrap();
            let mut names: Vec<String> = info
                .network_settings
                .unwrap()
                .networks
                .unwrap_or_default()
                .into_keys()
                .collect();
            names.sort();
            names
        };
        assert_eq!(networks(first.clone()).await, vec!["net".to_owned()]);
        // One on the default network joins hers by name, and by id prefix.
        let mut bridged = t.spec(&[]);
        bridged.name = Some("second".into());
        let second = t.sleeper(&t.alice, bridged).await;
        t.alice
            .query(&NetworkConnect(member("net", "second")))
            .await
            .unwrap();
        assert!(networks(second.clone()).await.contains(&"net".to_owned()));
        t.alice
            .query(&NetworkDisconnect(member(&hers.id[..8], "second")))
            .await
            .unwrap();
        assert!(!networks(second.clone()).await.contains(&"net".to_owned()));

        refused(
            "driver options",
            ErrorCode::FORBIDDEN,
            t.alice
                .query(&NetworkCreate {
                    name: "opts".into(),
                    options: BTreeMap::from([(
                        "com.docker.network.driver.mtu".to_owned(),
                        "1400".to_owned(),
                    )]),
                    ..Default::default()
                })
                .await,
        );

        for id in [&first, &second] {
            t.remove(&t.alice, id).await;
        }
        t.alice
            .query(&NetworkRemove {
                network: "net".into(),
            })
            .await
            .unwrap();
        missing(
            "removed twice",
            "network",
            "net",
            t.alice
                .query(&NetworkRemove {
                    network: "net".into(),
                })
                .await,
        );
        t.bob
            .query(&NetworkRemove {
                network: "net".into(),
            })
            .await
            .unwrap();
        // Their rules went with them.
        assert_eq!(rules_for(&her_bridge), Vec::<String>::new());
        assert_eq!(rules_for(&his_bridge), Vec::<String>::new());
        t.finish();
    });
}

// ------------------------------------------------ reaching the host and peers

#[test]
fn a_users_container_lands_on_its_own_network_not_the_default_bridge() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::with(Config::from_env().with_user_network(UserNetwork::Isolated));
        let alice_key = t.key("alice");
        let cleanup = Cleanup::default();
        let (alice, bob, root) = (&t.alice, &t.bob, &t.root);

        // Two containers at once: one network made, both on it.
        let (first, second) = futures::join!(sleeper(alice, &cleanup), sleeper(alice, &cleanup));
        let (net, _, _) = only_network(alice, &first).await;
        assert_eq!(only_network(alice, &second).await.0, net);
        assert!(net.starts_with("dw-") && net != "bridge", "{net}");
        let filters = HashMap::from([("name".to_owned(), vec![net.clone()])]);
        let options = q::ListNetworksOptions {
            filters: Some(filters),
        };
        let same_name: Vec<_> = on_engine(engine().list_networks(Some(options)))
            .unwrap()
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(&net))
            .collect();
        assert_eq!(same_name.len(), 1, "one network per user");

        // A bridge named dw + 12 hex, sealed as alice's, fenced off the host.
        let network =
            on_engine(engine().inspect_network(&net, None::<q::InspectNetworkOptions>)).unwrap();
        assert_eq!(network.driver.as_deref(), Some("bridge"));
        assert_eq!(network.internal, Some(false));
        let labels = network.labels.unwrap_or_default();
        assert_eq!(
            labels.get(LABEL_OWNER).map(String::as_str),
            Some(alice_key.as_str())
        );
        assert!(labels.contains_key("dockwire.seal"));
        let bridge = bridge_of(&net);
        assert!(
            bridge.len() == 14
                && bridge.starts_with("dw")
                && bridge[2..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{bridge}"
        );
        assert!(!rules_for(&bridge).is_empty(), "no rule for {bridge}");

        // bob's lands on another network of his own.
        let his = sleeper(bob, &cleanup).await;
        let (his_net, _, _) = only_network(bob, &his).await;
        assert_ne!(his_net, net);

        // alice may not pick the default bridge, the host's network or
        // another container's; bob's network is, to her, not there.
        let container = format!("container:{his}");
        for (asked, code) in [
            ("bridge", ErrorCode::FORBIDDEN),
            ("default", ErrorCode::FORBIDDEN),
            ("host", ErrorCode::FORBIDDEN),
            (container.as_str(), ErrorCode::FORBIDDEN),
            (his_net.as_str(), NETWORK_NOT_FOUND),
        ] {
            let mut spec = ContainerSpec::new(IMAGE, ["true"]);
            spec.network = Some(asked.into());
            let refused = made_or(&cleanup, alice.query(&ContainerCreate(spec)).await);
            assert_eq!(refused, code, "{asked}");
        }
        // The admin's containers still land on the default bridge.
        let admins = sleeper(root, &cleanup).await;
        assert_eq!(only_network(root, &admins).await.0, default_network());
    });
}

#[test]
fn a_users_container_cannot_reach_the_host_by_its_gateway_or_any_other_address() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::with(Config::from_env().with_user_network(UserNetwork::Isolated));
        let cleanup = Cleanup::default();
        let (alice, root) = (&t.alice, &t.root);
        let host = HostService::start();

        let hers = web(alice, &cleanup, "alice").await;
        let (_, her_ip, gateway) = only_network(alice, &hers).await;
        let address = host_address();
        for addr in [gateway.as_str(), address.as_str()] {
            let (out, err, code) = get(alice, &hers, addr, host.port).await;
            assert_ne!(code, 0, "the host's service answered on {addr}: {out:?}");
            assert!(out.is_empty(), "{out:?}");
            // Rejected, not dropped: refused at once.
            assert!(err.contains("refused"), "{addr}: {err}");
        }
        assert_eq!(host.accepted.load(Ordering::SeqCst), 0);

        // Positive controls: the admin's container on the default bridge
        // reaches the same service; the host reaches into alice's
        // container (replies pass the rules).
        let admins = sleeper(root, &cleanup).await;
        let (_, _, bridge_gateway) = only_network(root, &admins).await;
        let (out, _, code) = get(root, &admins, &bridge_gateway, host.port).await;
        assert_eq!((out.as_str(), code), ("host\n", 0));
        let mut answer = String::new();
        for _ in 0..20 {
            answer = host_get(&her_ip, 8080);
            if answer.contains("alice") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answer.ends_with("alice\n"), "{answer:?}");
    });
}

#[test]
fn a_users_container_cannot_reach_other_peers_containers_by_ip_or_published_port() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::with(Config::from_env().with_user_network(UserNetwork::Isolated));
        let cleanup = Cleanup::default();
        let (alice, bob) = (&t.alice, &t.bob);

        // bob's own second container reaches his first: the positive
        // control, so that what follows cannot pass by accident.
        let his_web = web(bob, &cleanup, "bob").await;
        let (_, his_ip, _) = only_network(bob, &his_web).await;
        let his_other = sleeper(bob, &cleanup).await;
        let (out, _, code) = get_ready(bob, &his_other, &his_ip, 8080, "bob").await;
        assert!(out.ends_with("bob\n") && code == 0, "{out:?} {code}");

        // The admin's container on the default bridge, published on the
        // host: the host reaches it.
        let (admins, port) = admins_published_web(&cleanup);
        let admins_ip = default_bridge_ip(&admins);
        let mut answer = String::new();
        for _ in 0..20 {
            answer = host_get("127.0.0.1", port);
            if answer.contains("root") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answer.ends_with("root\n"), "{answer:?}");

        // alice reaches none of them.
        let hers = sleeper(alice, &cleanup).await;
        let (_, _, gateway) = only_network(alice, &hers).await;
        unreachable(alice, &hers, &his_ip, 8080, "bob's container").await;
        unreachable(alice, &hers, &admins_ip, 8080, "the admin's container").await;
        unreachable(
            alice,
            &hers,
            &gateway,
            port,
            "a published port via the gateway",
        )
        .await;
        let address = host_address();
        unreachable(
            alice,
            &hers,
            &address,
            port,
            "a published port via the host",
        )
        .await;

        // bob's container still serves bob.
        let (out, _, _) = get(bob, &his_other, &his_ip, 8080).await;
        assert!(out.ends_with("bob\n"), "{out:?}");
    });
}

/// Attacks 3 and 4 under an operator's rule that accepts everything
/// (in `DOCKER-USER`), or while Docker rewrites its own isolation rules in
/// `filter`'s `FORWARD` (it deletes and re-inserts them as networks come
/// and go, and a user can make and remove networks at will; the gap that
/// once let this test's older form fail one run in five): dockwire's rules in `mangle`
/// still keep alice's container from the admin's container on the default
/// bridge and from bob's on his network, and keep bob's from hers. The
/// control lifts dockwire's rules on alice's bridge for a moment: the
/// admin's container then answers her, so the accepting rules really open
/// the way.
#[test]
fn other_peers_containers_stay_unreachable_while_the_forward_chain_accepts_everything() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::with(Config::from_env().with_user_network(UserNetwork::Isolated));
        let cleanup = Cleanup::default();
        let (alice, bob) = (&t.alice, &t.bob);
        let his_web = web(bob, &cleanup, "bob").await;
        let (his_net, his_ip, _) = only_network(bob, &his_web).await;
        let (admins, _) = admins_published_web(&cleanup);
        let admins_ip = default_bridge_ip(&admins);
        let hers = web(alice, &cleanup, "alice").await;
        let (her_net, her_ip, _) = only_network(alice, &hers).await;
        let his_other = sleeper(bob, &cleanup).await;
        // bob's own container reaches his web: the servers are up.
        let (out, _, _) = get_ready(bob, &his_other, &his_ip, 8080, "bob").await;
        assert!(out.ends_with("bob\n"), "{out:?}");

        let _open_hers = ForwardAccepted::on(&bridge_of(&her_net));
        let _open_his = ForwardAccepted::on(&bridge_of(&his_net));
        unreachable(alice, &hers, &admins_ip, 8080, "the admin's container").await;
        unreachable(alice, &hers, &his_ip, 8080, "bob's container").await;
        unreachable(bob, &his_other, &her_ip, 8080, "alice's container").await;

        // The control: without dockwire's rules on her bridge, the
        // accepting rules let alice reach the admin's container.
        {
            let _lifted = ForwardFenceLifted::on(&bridge_of(&her_net));
            let (out, _, code) = get_ready(alice, &hers, &admins_ip, 8080, "root").await;
            assert!(out.ends_with("root\n") && code == 0, "{out:?} {code}");
        }
        unreachable(
            alice,
            &hers,
            &admins_ip,
            8080,
            "the admin's container, again",
        )
        .await;

        // Each still reaches its own.
        let (out, _, _) = get(bob, &his_other, &his_ip, 8080).await;
        assert!(out.ends_with("bob\n"), "{out:?}");
        let (out, _, _) = get(alice, &hers, &her_ip, 8080).await;
        assert!(out.ends_with("alice\n"), "{out:?}");
    });
}

#[test]
fn internal_mode_has_no_way_out_and_none_mode_no_interface_but_loopback() {
    Rt::Tokio.block_on(async {
        // alice on an isolated server, bob on an internal one, carol on
        // one of mode none: three servers of one engine for the same peers.
        let t = Tenancy::with(Config::from_env().with_user_network(UserNetwork::Isolated));
        let internal = t.serve(Config::from_env().with_user_network(UserNetwork::Internal));
        let none = t.serve(Config::from_env().with_user_network(UserNetwork::None));
        let cleanup = Cleanup::default();
        let outside = Outside::start();

        // Isolated: the outside answers (the positive control).
        let out_client = &t.alice;
        let out_box = sleeper(out_client, &cleanup).await;
        let (out, _, code) = get_ready(out_client, &out_box, Outside::ADDRESS, 80, "outside").await;
        assert_eq!((out.as_str(), code), ("outside\n", 0));

        // Internal: nothing leaves, and the host is still fenced off.
        let in_client = DockerClient::new(internal.client("bob"));
        let in_box = sleeper(&in_client, &cleanup).await;
        let (net, _, gateway) = only_network(&in_client, &in_box).await;
        unreachable(&in_client, &in_box, Outside::ADDRESS, 80, "the outside").await;
        let network =
            on_engine(engine().inspect_network(&net, None::<q::InspectNetworkOptions>)).unwrap();
        assert_eq!(network.internal, Some(true));
        drop(outside);
        let host = HostService::start();
        if !gateway.is_empty() {
            unreachable(&in_client, &in_box, &gateway, host.port, "the gateway").await;
        }
        unreachable(&in_client, &in_box, &host_address(), host.port, "the host").await;
        assert_eq!(host.accepted.load(Ordering::SeqCst), 0);

        // A server of another mode does not take a network it would not
        // have made: refused, not joined.
        let other = DockerClient::new(internal.client("alice"));
        let refused = other
            .query(&ContainerCreate(ContainerSpec::new(IMAGE, ["true"])))
            .await;
        assert_eq!(made_or(&cleanup, refused), CONFLICT);

        // None: network mode none, only loopback, no network made.
        let off_client = DockerClient::new(none.client("carol"));
        let off_box = sleeper(&off_client, &cleanup).await;
        let (links, _, code) = exec_streams(&off_client, &off_box, &["ip", "-o", "link"]).await;
        assert_eq!(code, 0);
        let names: Vec<&str> = links
            .lines()
            .filter_map(|l| l.split(':').nth(1).map(str::trim))
            .collect();
        assert_eq!(names, ["lo"], "{links}");
        assert_eq!(
            networks_of(&off_client, &off_box)
                .await
                .keys()
                .collect::<Vec<_>>(),
            ["none"]
        );
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_OWNER}={}", t.key("carol"))],
        )]);
        let options = q::ListNetworksOptions {
            filters: Some(filters),
        };
        assert!(
            on_engine(engine().list_networks(Some(options)))
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn removing_a_users_network_removes_its_rules_and_leaves_nothing() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::with(Config::from_env().with_user_network(UserNetwork::Isolated));
        let alice_key = t.key("alice");
        let (alice, root) = (&t.alice, &t.root);
        let remove = |id: String| ContainerRemove {
            id,
            force: true,
            volumes: false,
        };

        for round in 0..2 {
            // Made on first need (again after its removal), fenced.
            let cleanup = Cleanup::default();
            let hers = sleeper(alice, &cleanup).await;
            let (net, _, _) = only_network(alice, &hers).await;
            let bridge = bridge_of(&net);
            // Per family: one REJECT into the host, five DROPs between
            // bridges.
            let rules = rules_for(&bridge);
            for tool in ["iptables", "ip6tables"] {
                let count = |table: &str, target: &str| {
                    let prefix = format!("{tool} {table}:");
                    rules
                        .iter()
                        .filter(|r| r.starts_with(&prefix) && r.contains(target))
                        .count()
                };
                assert_eq!(
                    (count("filter", "-j REJECT"), count("mangle", "-j DROP")),
                    (1, 5),
                    "round {round}: {rules:?}"
                );
            }
            assert_eq!(rules.len(), 12, "round {round}: {rules:?}");

            root.query(&remove(hers)).await.unwrap();
            root.query(&NetworkRemove {
                network: net.clone(),
            })
            .await
            .unwrap();
            let gone = on_engine(engine().inspect_network(&net, None::<q::InspectNetworkOptions>));
            assert!(gone.is_err(), "round {round}: {net} is still there");
            assert_eq!(rules_for(&bridge), Vec::<String>::new(), "round {round}");
            let filters = HashMap::from([(
                "label".to_owned(),
                vec![format!("{LABEL_OWNER}={alice_key}")],
            )]);
            let options = q::ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            };
            let left = on_engine(engine().list_containers(Some(options))).unwrap();
            assert!(left.is_empty(), "round {round}: {left:?}");
        }
    });
}

// ------------------------------------------------- attack 11: roles by key

/// Attack 11: alice's key removed and a new key trusted under her name as
/// an admin while her old connection is open. The old connection's next
/// call does not run as admin (nor as anything): it is refused FORBIDDEN
/// and the connection closed; the new key is the admin; alice's old
/// containers are still hers and untouched.
#[test]
fn a_removed_key_readded_by_name_as_admin_gets_nothing_on_its_old_connection() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let old = t.served.connect(t.peers.identity("alice")).await;
        let hers = t.sleeper(&old.docker, t.spec(&[])).await;
        let (refused, _) = code(old.docker.query(&admin_only()).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN, "a user gets no engine info");

        // `trust remove alice`, then `trust add alice NEWKEY --admin`.
        let new_key = Identity::generate("dockwire").unwrap();
        t.owned_by(&new_key);
        t.peers.trust().remove("alice");
        t.peers.trust().add(&new_key, "alice", Role::Admin);

        let (refused, message) = code(old.docker.query(&admin_only()).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN, "{message}");
        // The server's periodic check closes the connection.
        assert_eq!(t.served.recheck(), 1);
        old.until_closed().await;
        assert!(
            old.closed_for_trust(),
            "{:?}",
            old.connection.close_reason()
        );

        // The new key is the admin, on its own connection.
        let admin = t.served.connect(&new_key).await;
        admin.docker.query(&admin_only()).await.unwrap();
        // What the old key made is untouched, and still belongs to the
        // old key only: bob does not see it.
        let info = on_engine(engine().inspect_container(&hers, None)).unwrap();
        assert_eq!(info.state.unwrap().running, Some(true));
        assert!(!listed_ids(&t.bob).await.contains(&hers));
        t.remove(&admin.docker, &hers).await;
        t.finish();
    });
}

/// A key whose role changes (alice promoted to admin, same key): her open
/// connection's next call does not run with the new role, it is refused,
/// and the periodic check closes the connection (an idle one too); bob's
/// is untouched.
#[test]
fn a_connection_whose_keys_role_changes_is_refused_and_closed() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let alice = t.served.connect(t.peers.identity("alice")).await;
        let bob = t.served.connect(t.peers.identity("bob")).await;
        alice.docker.query(&Ping {}).await.unwrap();
        bob.docker.query(&Ping {}).await.unwrap();
        assert_eq!(t.served.recheck(), 0, "nothing changed yet");

        // Another of hers, quiet after one call (which makes sure the
        // server has taken the connection in).
        let idle = t.served.connect(t.peers.identity("alice")).await;
        idle.docker.query(&Ping {}).await.unwrap();
        t.peers
            .trust()
            .add(t.peers.identity("alice"), "alice", Role::Admin);
        let (refused, message) = code(alice.docker.query(&admin_only()).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN, "{message}");
        assert_eq!(t.served.recheck(), 2, "alice's two connections");
        alice.until_closed().await;
        assert!(alice.closed_for_trust());
        idle.until_closed().await;
        assert!(idle.closed_for_trust());
        // A new connection of hers has the new role.
        let promoted = t.served.connect(t.peers.identity("alice")).await;
        promoted.docker.query(&admin_only()).await.unwrap();
        // bob's connection, whose trust did not change, still works.
        bob.docker.query(&Ping {}).await.unwrap();
        assert!(bob.connection.close_reason().is_none());
        t.finish();
    });
}

/// The role follows the key, never the name: a user key whose name is the
/// admin's name is a user; and what a user owns is its key's, so a new key
/// under an old name owns none of it.
#[test]
fn the_role_and_ownership_follow_the_key_not_the_name() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let mallory = Identity::generate("dockwire").unwrap();
        t.owned_by(&mallory);
        t.peers.trust().add(&mallory, "root", Role::User);
        let fake_root = t.served.connect(&mallory).await;
        let (refused, _) = code(fake_root.docker.query(&admin_only()).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN);

        let alice = t.served.connect(t.peers.identity("alice")).await;
        let hers = t.sleeper(&alice.docker, t.spec(&[])).await;
        let info = alice
            .docker
            .query(&ContainerInspect(ContainerRef::new(&hers)))
            .await
            .unwrap();
        let owner = info.config.unwrap().labels.unwrap()[LABEL_OWNER].clone();
        assert_eq!(owner, t.key("alice"));

        // alice's new key, under the same name, after the old one is gone.
        let renewed = Identity::generate("dockwire").unwrap();
        t.owned_by(&renewed);
        t.peers.trust().remove("alice");
        t.peers.trust().add(&renewed, "alice", Role::User);
        let alice2 = t.served.connect(&renewed).await;
        assert!(!listed_ids(&alice2.docker).await.contains(&hers));
        let (refused, _) = code(
            alice2
                .docker
                .query(&ContainerInspect(ContainerRef::new(&hers)))
                .await,
        );
        assert!(
            [ErrorCode::FORBIDDEN, CONTAINER_NOT_FOUND].contains(&refused),
            "{refused:?}"
        );
        // The admin still sees it.
        assert!(listed_ids(&t.root).await.contains(&hers));
        t.remove(&t.root, &hers).await;
        t.finish();
    });
}

// ---------------------------------------------------------- attack 9: pulls

/// Attack 9: a user's pull from a registry on the host's loopback is
/// refused FORBIDDEN before the engine is asked (the loopback service
/// never hears of it), by address or by a name that resolves there; an
/// admin's pull reaches it.
#[test]
fn a_users_pull_from_the_hosts_loopback_is_refused_before_the_engine_is_asked() {
    Rt::Tokio.block_on(async {
        let registry = FakeRegistry::start().await;
        let port = registry.addr.port();
        // The operator allows the name: it resolves to loopback, which a
        // name may not.
        let t =
            Tenancy::with(Config::from_env().with_allowed_registry(format!("localhost:{port}")));
        for image in [
            format!("127.0.0.1:{port}/x:latest"),
            format!("localhost:{port}/x:latest"),
            format!("[::1]:{port}/x:latest"),
            format!("127.1:{port}/x:latest"),
        ] {
            let (refused, message) = code(pull(&t.alice, &image).await);
            assert_eq!(refused, ErrorCode::FORBIDDEN, "{image}: {message}");
            assert!(!message.contains(SECRET));
        }
        assert_eq!(registry.connections(), 0, "the engine was asked");
        // The victim (the host's service) is reachable by an admin's pull:
        // the refusal above is the server's, not the network's.
        let (failed, message) = code(pull(&t.root, &format!("127.0.0.1:{port}/x:latest")).await);
        assert_eq!(failed, IMAGE_PULL_FAILED);
        // Podman asks over HTTPS first and reports that failure, not the
        // registry's answer.
        assert!(
            message.contains(SECRET) || on_podman() && message.contains("HTTP response to HTTPS"),
            "admins get the engine's text: {message}"
        );
        assert!(registry.connections() > 0);
    });
}

/// A registry the operator allows by address is the operator's choice:
/// users pull from it, but a failure's text is fixed, never the
/// registry's answer.
#[test]
fn an_allowed_registrys_answer_is_not_passed_back_to_users() {
    Rt::Tokio.block_on(async {
        let registry = FakeRegistry::start().await;
        let allowed = registry.addr.to_string();
        let t = Tenancy::with(Config::from_env().with_allowed_registry(&allowed));
        let image = format!("{allowed}/x:latest");
        let (failed, message) = code(pull(&t.alice, &image).await);
        assert_eq!(failed, IMAGE_PULL_FAILED, "{message}");
        assert!(!message.contains(SECRET), "{message}");
        assert!(message.contains(&image), "{message}");
        assert!(registry.connections() > 0, "allowed: the engine asked it");
    });
}

/// Users pull from the registries the operator allows (here the tests'
/// local registry) and not from others; with no --allow-registry, only
/// Docker Hub.
#[test]
fn users_pull_only_from_allowed_registries() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let (refused, message) = code(pull(&t.alice, REGISTRY_IMAGE).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN);
        assert!(
            message.contains("--allow-registry 127.0.0.1:5000"),
            "{message}"
        );

        let open = t.serve(Config::from_env().with_allowed_registry("127.0.0.1:5000"));
        let alice = DockerClient::new(open.client("alice"));
        let progress = pull(&alice, REGISTRY_IMAGE).await.unwrap();
        assert!(!progress.is_empty());
    });
}

// -------------------------------------------------- attack 12: hardening

/// The capability bits of a `Cap*:` line of /proc/self/status.
fn caps(status: &str, line: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .unwrap_or_else(|| panic!("no {line} in {status}"));
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

const NET_RAW: u64 = 1 << 13;
const MKNOD: u64 = 1 << 27;

/// Attack 12: a user's container has no new privileges and neither
/// NET_RAW nor MKNOD (`ping` and `mknod` fail); an admin's keeps them.
#[test]
fn users_containers_have_no_new_privileges_net_raw_or_mknod() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let (status, code) = run(&t.alice, t.spec(&["cat", "/proc/self/status"]))
            .await
            .unwrap();
        assert_eq!(code, 0);
        assert!(status.contains("NoNewPrivs:\t1"), "{status}");
        for line in ["CapBnd:", "CapEff:"] {
            assert_eq!(
                caps(&status, line) & (NET_RAW | MKNOD),
                0,
                "{line} {status}"
            );
        }
        let ping = ["ping", "-c", "1", "-W", "1", "127.0.0.1"];
        let (out, code) = run(&t.alice, t.spec(&ping)).await.unwrap();
        assert_ne!(code, 0, "{out}");
        let mknod = ["mknod", "/tmp/null", "c", "1", "3"];
        let (out, code) = run(&t.alice, t.spec(&mknod)).await.unwrap();
        assert_ne!(code, 0, "{out}");

        // An admin's keep them (on Podman, whose defaults lack them, when
        // it adds them).
        let admins = |cmd: &[&str]| {
            let mut spec = t.spec(cmd);
            if on_podman() {
                spec.cap_add = vec!["NET_RAW".into(), "MKNOD".into()];
            }
            spec
        };
        let (status, _) = run(&t.root, admins(&["cat", "/proc/self/status"]))
            .await
            .unwrap();
        assert!(status.contains("NoNewPrivs:\t0"), "{status}");
        assert_eq!(
            caps(&status, "CapBnd:") & (NET_RAW | MKNOD),
            NET_RAW | MKNOD
        );
        let (out, code) = run(&t.root, admins(&mknod)).await.unwrap();
        assert_eq!(code, 0, "{out}");
        let (out, code) = run(&t.root, admins(&ping)).await.unwrap();
        assert_eq!(code, 0, "{out}");
        t.finish();
    });
}

/// The operator chooses what users' containers lose (`--user-cap-drop`).
#[test]
fn the_operator_chooses_the_capabilities_users_lose() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::with(Config::from_env().with_user_cap_drop(["NET_RAW", "CHOWN"]));
        let mknod = ["mknod", "/tmp/null", "c", "1", "3"];
        if !skipped_on_podman("Podman's default capabilities lack MKNOD: no user has it to keep") {
            let (out, code) = run(&t.alice, t.spec(&mknod)).await.unwrap();
            assert_eq!(code, 0, "MKNOD kept: {out}");
        }
        let (out, code) = run(&t.alice, t.spec(&["chown", "1:1", "/tmp"]))
            .await
            .unwrap();
        assert_ne!(code, 0, "CHOWN dropped: {out}");
        t.finish();
    });
}

/// An engine error naming a host path reaches a user without it.
#[test]
fn no_host_path_is_in_an_error_a_user_sees() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        // A volume mounted over a file: the engine's error names the
        // container's root file system on the host.
        let mut s = t.spec(&["true"]);
        s.mounts = vec![mount("over-sh", "/bin/sh")];
        // Podman makes the container and fails its start.
        let (_, message) = match t.alice.query(&ContainerCreate(s)).await {
            Ok(made) if on_podman() => {
                let start = ContainerStart(ContainerRef::new(&made.id));
                let failed = code(t.alice.query(&start).await);
                t.remove(&t.alice, &made.id).await;
                failed
            }
            created => code(created),
        };
        assert!(message.contains("<host path>"), "{message}");
        assert!(!message.contains("/var/lib/"), "{message}");
        // The volume the mount made is hers, removed with the test.
        t.alice.query(&remove_volume("over-sh")).await.unwrap();
        t.finish();
    });
}

// -------------------------------------------------------- attack 10: top

/// Attack 10: a user's `top` with `ps` arguments outside the safe set is
/// INVALID_INPUT before the engine runs `ps`; the safe set works, and an
/// admin's are passed on.
#[test]
fn a_users_top_takes_only_safe_ps_arguments() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let hers = t.sleeper(&t.alice, t.spec(&[])).await;
        let top = |args: Option<&str>| ContainerTop {
            id: hers.clone(),
            ps_args: args.map(Into::into),
        };
        let (refused, _) = code(t.alice.query(&top(Some("-eoetimes=PID,args"))).await);
        assert_eq!(refused, ErrorCode::INVALID_INPUT);
        for ok in [None, Some("-ef"), Some("-o pid,args")] {
            let listed = t.alice.query(&top(ok)).await.unwrap();
            let rows = listed.processes.unwrap_or_default();
            assert!(rows.iter().flatten().any(|c| c.contains("sleep")), "{ok:?}");
        }
        // Podman runs the image's own ps (busybox's), which has no etimes:
        // the engine's refusal is said.
        if on_podman() {
            let (failed, message) =
                code(t.root.query(&top(Some("-eopid,etimes=UPTIME,args"))).await);
            assert_eq!(failed, DOCKER_ERROR, "{message}");
            assert!(
                message.contains("refused \"-eopid,etimes=UPTIME,args\""),
                "{message}"
            );
            t.remove(&t.alice, &hers).await;
            t.finish();
            return;
        }
        let listed = t
            .root
            .query(&top(Some("-eopid,etimes=UPTIME,args")))
            .await
            .unwrap();
        assert!(
            listed
                .titles
                .unwrap_or_default()
                .contains(&"UPTIME".to_owned())
        );
        t.remove(&t.alice, &hers).await;
        t.finish();
    });
}

// --------------------------------------------------------- the audit line

/// Every call leaves an audit line with its key, name, address, operation
/// and the object it names; a create, one with the container's id, image,
/// command, mounts and network; and its end a call line with the outcome
/// and duration.
#[test]
fn every_call_leaves_an_audit_line_with_key_address_object_and_outcome() {
    let log = captured_log();
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let alice = t.served.connect(t.peers.identity("alice")).await;
        let key = format!("key={}", t.key("alice"));
        let remote = format!("remote={}", alice.local_addr());
        let hers = t.sleeper(&alice.docker, t.spec(&[])).await;
        let (refused, _) = code(alice.docker.query(&admin_only()).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN);

        let mut text = String::new();
        for _ in 0..100 {
            text = log.text();
            if text.contains(&format!("id={hers}")) && text.contains("system/info") {
                break;
            }
            sleep_ms(20).await;
        }
        let mine: Vec<&str> = text.lines().filter(|l| l.contains(&key)).collect();
        let audit = |operation: &str| {
            mine.iter()
                .find(|l| {
                    l.contains("dockwire::audit") && l.contains(&format!("operation={operation}"))
                })
                .unwrap_or_else(|| panic!("no audit line for {operation}: {text}"))
                .to_string()
        };
        let start = audit("container/start");
        for field in [
            "peer=alice",
            &remote,
            "role=user",
            &format!("objects=id={hers}"),
        ] {
            assert!(start.contains(field), "{field}: {start}");
        }
        let created = mine
            .iter()
            .find(|l| l.contains(&format!("container={hers}")))
            .unwrap_or_else(|| panic!("no created line: {text}"));
        for field in [
            &format!("image={IMAGE}"),
            "cmd=[\"sleep\", \"3600\"]",
            "mounts=[]",
            "network=default",
        ] {
            assert!(created.contains(field), "{field}: {created}");
        }
        let ended = mine
            .iter()
            .find(|l| l.contains("dockwire::call") && l.contains("operation=system/info"))
            .unwrap_or_else(|| panic!("no call line: {text}"));
        for field in [&remote, "outcome=refused FORBIDDEN", "duration_ms="] {
            assert!(ended.contains(field), "{field}: {ended}");
        }
        t.remove(&alice.docker, &hers).await;
        t.finish();
    });
}

// ------------------------------------------- exec signals through the engine
//
// The server does not share the engine's pid namespace (`ExecSignals::Engine`):
// signals and cleanup reach an exec by a second exec in its container (the rig
// is `dockwire_tests::exec_signals`).

/// A shell that says `ready`, then on TERM says `got-term` and exits 7.
const TRAPPING: &str = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 1; done";

#[test]
fn exec_signal_through_the_engine_reaches_the_process() {
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        let mut session = t
            .alice
            .open(&ExecInput::new(&id, ["sh", "-c", TRAPPING]))
            .await
            .unwrap();
        let mut seen = Vec::new();
        read_until(&mut session, &mut seen, "ready\n").await;
        session.control.signal("TERM").await.unwrap();
        session.stdout.read_to_end(&mut seen).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&seen), "ready\ngot-term\n");
        assert_eq!(session.exit.await.unwrap(), 7);

        // A plain process, signalled by number: what a shell reports for
        // TERM.
        let mut session = t
            .alice
            .open(&ExecInput::new(&id, ["sleep", "610"]))
            .await
            .unwrap();
        session.control.signal("15").await.unwrap();
        let mut rest = Vec::new();
        session.stdout.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"");
        assert_eq!(session.exit.await.unwrap(), 143);
        t.finish(&id).await;
    });
}

#[test]
fn exec_signal_through_the_engine_reaches_a_non_root_users_process() {
    // The signaller runs as the exec's user: the container's root could
    // not read that process's environment (no CAP_SYS_PTRACE).
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        let mut input = ExecInput::new(&id, ["sh", "-c", TRAPPING]);
        input.user = Some("1000:1000".into());
        let mut session = t.alice.open(&input).await.unwrap();
        let mut seen = Vec::new();
        read_until(&mut session, &mut seen, "ready\n").await;
        session.control.signal("SIGTERM").await.unwrap();
        session.stdout.read_to_end(&mut seen).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&seen), "ready\ngot-term\n");
        assert_eq!(session.exit.await.unwrap(), 7);
        t.finish(&id).await;
    });
}

#[test]
fn a_signal_through_the_engine_reaches_only_its_own_exec() {
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        let mut signalled = t
            .alice
            .open(&ExecInput::new(&id, ["sleep", "611"]))
            .await
            .unwrap();
        let mut bystander = t
            .alice
            .open(&ExecInput::new(
                &id,
                ["sh", "-c", "sleep 612; echo bystander-done"],
            ))
            .await
            .unwrap();
        within_patience("both execs run", async || {
            runs(&id, "sleep 611") && runs(&id, "sleep 612")
        })
        .await;
        signalled.control.signal("TERM").await.unwrap();
        assert_eq!(signalled.exit.await.unwrap(), 143);
        // The other exec, with its own marker, is untouched.
        assert!(runs(&id, "sleep 612"), "the other exec still runs");
        assert_eq!(marked(&id).await.len(), 2, "the bystander's sh and sleep");
        bystander.control.abort().await.unwrap();
        assert!(bystander.exit.await.is_err());
        within_patience("the bystander is killed", async || {
            marked(&id).await.is_empty()
        })
        .await;
        t.finish(&id).await;
    });
}

#[test]
fn a_cancelled_exec_is_killed_through_the_engine() {
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        // Aborted on the raw carriage: the shell, and the child it started.
        let mut session = t
            .alice
            .open(&ExecInput::new(
                &id,
                ["sh", "-c", "sleep 601 & sleep 602; true"],
            ))
            .await
            .unwrap();
        within_patience("the exec and its child run", async || {
            runs(&id, "sleep 601") && runs(&id, "sleep 602")
        })
        .await;
        assert_eq!(marked(&id).await.len(), 3, "sh and its two sleeps");
        session.control.abort().await.unwrap();
        assert!(session.exit.await.is_err());
        within_patience("no process carries a marker", async || {
            marked(&id).await.is_empty()
        })
        .await;
        assert!(!runs(&id, "sleep 601") && !runs(&id, "sleep 602"));

        // A json exec whose subscription is dropped.
        let items = t
            .alice
            .subscribe(&ExecInput::new(
                &id,
                ["sh", "-c", "sleep 603 & sleep 604; true"],
            ))
            .await
            .unwrap();
        within_patience("the json exec and its child run", async || {
            runs(&id, "sleep 603") && runs(&id, "sleep 604")
        })
        .await;
        drop(items);
        within_patience("no process carries a marker", async || {
            marked(&id).await.is_empty()
        })
        .await;
        assert!(!runs(&id, "sleep 603") && !runs(&id, "sleep 604"));
        // The container itself is untouched.
        assert!(runs(&id, "sleep 3600"));
        t.finish(&id).await;
    });
}

#[test]
fn a_callers_dockwire_exec_is_refused_and_the_servers_marker_is_fresh() {
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        // The marker is the server's: fresh per exec, 128 bits of hex.
        let echo = ["sh", "-c", "echo \"$DOCKWIRE_EXEC\""];
        let first = output(&t.alice, ExecInput::new(&id, echo)).await.unwrap();
        let second = output(&t.alice, ExecInput::new(&id, echo)).await.unwrap();
        for (out, code) in [&first, &second] {
            assert_eq!(*code, 0);
            let marker = out.strip_suffix('\n').unwrap();
            assert_eq!(marker.len(), 32, "{out:?}");
            assert!(marker.bytes().all(|b| b.is_ascii_hexdigit()), "{out:?}");
        }
        assert_ne!(first.0, second.0);

        // A caller's own: refused (given a value, or passed on from the
        // container's), and nothing runs.
        let forged = first.0.trim();
        for entry in [
            format!("DOCKWIRE_EXEC={forged}"),
            "DOCKWIRE_EXEC".to_owned(),
        ] {
            let mut input = ExecInput::new(&id, ["touch", "/tmp/forged"]);
            input.env = vec!["A=1".into(), entry.clone()];
            let refused = match output(&t.alice, input).await {
                Err(ClientError::Remote(e)) => e,
                other => panic!("{entry}: expected a refusal, got {other:?}"),
            };
            assert_eq!(refused.code, ErrorCode::INVALID_INPUT, "{entry}");
            assert_eq!(
                refused.message,
                "`env` may not set DOCKWIRE_EXEC: the server marks its execs with it"
            );
        }
        let ls = output(&t.alice, ExecInput::new(&id, ["ls", "/tmp"]))
            .await
            .unwrap();
        assert_eq!(ls, (String::new(), 0), "nothing ran");
        t.finish(&id).await;
    });
}

#[test]
fn a_dead_calls_exec_is_killed_through_the_engine_by_the_sweep() {
    bounded(async {
        let t = Signals::new();
        let id = t.container().await;
        // Two execs whose calls died with a crashed server, as its journal
        // left them: one with its marker, one from before markers.
        let marker = "0123456789abcdef0123456789abcdef";
        let marked_exec = detached(&id, Some(marker), "sleep 631 & sleep 632; true").await;
        let old_exec = detached(&id, None, "sleep 633").await;
        let journal = std::env::temp_dir().join(unique("signals-journal"));
        std::fs::create_dir_all(&journal).unwrap();
        std::fs::write(journal.join(&marked_exec), format!("{id}\n{marker}\n")).unwrap();
        std::fs::write(journal.join(&old_exec), format!("{id}\n")).unwrap();
        within_patience("the execs run", async || {
            runs(&id, "sleep 631") && runs(&id, "sleep 632") && runs(&id, "sleep 633")
        })
        .await;

        let restarted = DockerService::new(
            Docker::connect_with_local_defaults().unwrap(),
            Config::from_env()
                .with_exec_journal(&journal)
                .with_exec_signals(ExecSignals::Engine),
        );
        restarted.sweep().await.unwrap();
        within_patience("the marked exec's processes are gone", async || {
            !runs(&id, "sleep 631") && !runs(&id, "sleep 632")
        })
        .await;
        // Nothing tells the old record's processes: they are left (and
        // logged), as documented.
        assert!(runs(&id, "sleep 633"));
        let left: Vec<_> = std::fs::read_dir(&journal).unwrap().collect();
        assert!(left.is_empty(), "the records are dropped: {left:?}");
        std::fs::remove_dir_all(&journal).unwrap();
        t.finish(&id).await;
    });
}
