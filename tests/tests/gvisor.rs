//! gVisor (issue 14): containers under the `runsc` runtime, against the
//! real engine with runsc registered (`scripts/engine` does it), over QUIC
//! with mutual TLS (the tenancy rig: alice a user, root an admin). A test
//! that finds no runsc on the engine fails.
//!
//! | what | test |
//! |---|---|
//! | `--user-runtime runsc`: a user's container in gVisor, an admin's on runc | `the_user_runtime_puts_a_users_container_in_gvisor_and_an_admins_stays_on_runc` |
//! | users choose runc or runsc only | `users_choose_runc_or_runsc_and_nothing_else` |
//! | exact stdout/stderr bytes and exit codes | `exec_gives_output_then_exit_code`, `exec_binary_output_is_exact_on_both_carriages` |
//! | a tty shell, resize, a signal | `exec_an_interactive_shell_with_a_tty`, `exec_resize_and_signal_reach_the_process` |
//! | stdin EOF reaching `cat`, 64 MiB by SHA-256 | `exec_cat_echoes_64_mib` |
//! | an abort leaves nothing running | `an_aborted_or_dropped_exec_leaves_nothing_running_in_gvisor` |
//! | a crashed server's exec is killed by the next start's sweep | `a_dead_calls_exec_in_gvisor_is_killed_by_the_sweep_by_its_marker` |
//! | `top` lists the container's processes | `top_in_gvisor_lists_the_containers_own_processes` |
//! | `cp` into and out of `/tmp` reach gVisor's own, elsewhere the engine's | `cp_into_and_out_of_tmp_in_gvisor_reach_its_own_tmp_and_elsewhere_the_engines` |
//! | a user's gVisor container is still fenced off the host | `a_users_gvisor_container_is_fenced_off_the_host` |
//!
//! Everything a test makes is owned by one of its keys or labelled;
//! `Tenancy::finish` fails the test if any of it is left.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters as q;
use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerClient, DockerService, ExecSignals, UserNetwork};
use dockwire_tests::Rt;
use dockwire_tests::docker::{self, Cleanup, Rig, engine, eventually, on_engine, unique};
use dockwire_tests::exec_signals::detached;
use dockwire_tests::reach::{HostService, get, host_address, only_network, web};
use dockwire_tests::tenancy::{Tenancy, code, exec, tar_of};
use futures::StreamExt;
use futures::io::{AsyncReadExt, AsyncWriteExt};

/// gVisor's runtime, as `scripts/engine` registers it.
const RUNSC: &str = "runsc";

/// How gVisor's kernel starts its `dmesg`.
const GVISOR_BANNER: &str = "Starting gVisor";

/// The longest a test may take: a signal or an EOF that never arrives
/// fails the test instead of hanging it.
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// Fails the test, saying what to do, when the engine has no runsc.
fn runsc_installed() {
    let info = on_engine(engine().info()).unwrap();
    let runtimes = info.runtimes.unwrap_or_default();
    assert!(
        runtimes.contains_key(RUNSC),
        "the engine has no runtime runsc (it has {:?}): run `scripts/engine` as root, which \
         installs runsc and registers it with dockerd",
        runtimes.keys().collect::<Vec<_>>()
    );
}

/// A server that puts every user container under runsc.
fn gvisor_for_users(network: UserNetwork) -> Tenancy {
    runsc_installed();
    Tenancy::with(
        Config::from_env()
            .with_user_network(network)
            .with_user_runtime(RUNSC),
    )
}

/// Runs `body` on the tests' tokio runtime, for [`TEST_LIMIT`] at most.
fn bounded(body: impl Future<Output = ()>) {
    Rt::Tokio.block_on(async {
        tokio::time::timeout(TEST_LIMIT, body)
            .await
            .expect("the test ran out of time");
    });
}

/// Container `id`'s runtime, as the engine has it.
fn runtime_of(id: &str) -> String {
    let info =
        on_engine(engine().inspect_container(id, None::<q::InspectContainerOptions>)).unwrap();
    info.host_config.and_then(|h| h.runtime).unwrap_or_default()
}

/// The processes in container `id` as its own `ps` lists them, run by the
/// engine directly (as root, with no dockwire marker).
fn inside_ps(id: &str) -> String {
    on_engine(async {
        let docker = engine();
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(vec!["ps".to_owned()]),
            ..Default::default()
        };
        let created = docker.create_exec(id, options).await.unwrap();
        let mut out = String::new();
        if let StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&created.id, None).await.unwrap()
        {
            while let Some(chunk) = output.next().await {
                if let LogOutput::StdOut { message } = chunk.unwrap() {
                    out.push_str(&String::from_utf8_lossy(&message));
                }
            }
        }
        out
    })
}

/// An HTTP GET from the host, `None` while nothing listens.
fn host_get(addr: &str, port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect((addr, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// Whether a process whose command line contains `needle` runs in `id`.
fn runs_inside(id: &str, needle: &str) -> bool {
    inside_ps(id).contains(needle)
}

#[test]
fn the_user_runtime_puts_a_users_container_in_gvisor_and_an_admins_stays_on_runc() {
    let t = gvisor_for_users(UserNetwork::None);
    bounded(async {
        // alice asks for runc: the operator's runsc wins.
        let mut spec = t.spec(&[]);
        spec.runtime = Some("runc".into());
        let hers = t.sleeper(&t.alice, spec).await;
        assert_eq!(runtime_of(&hers), RUNSC);
        let (dmesg, code) = exec(&t.alice, &hers, &["dmesg"]).await.unwrap();
        assert_eq!(code, 0, "{dmesg}");
        assert!(dmesg.contains(GVISOR_BANNER), "{dmesg:?}");
        // `inspect` shows it to her.
        let inspected = t
            .alice
            .query(&ContainerInspect(ContainerRef::new(&hers)))
            .await
            .unwrap();
        let shown = inspected.host_config.and_then(|h| h.runtime);
        assert_eq!(shown.as_deref(), Some(RUNSC));

        // root's stays on runc: the host's kernel, not gVisor's.
        let roots = t.sleeper(&t.root, t.spec(&[])).await;
        assert_eq!(runtime_of(&roots), "runc");
        let (dmesg, _) = exec(&t.root, &roots, &["dmesg"]).await.unwrap();
        assert!(!dmesg.contains(GVISOR_BANNER), "{dmesg:?}");
        // An admin chooses: runsc when asked.
        let mut spec = t.spec(&[]);
        spec.runtime = Some(RUNSC.into());
        let roots_gvisor = t.sleeper(&t.root, spec).await;
        assert_eq!(runtime_of(&roots_gvisor), RUNSC);

        for (who, id) in [
            (&t.alice, &hers),
            (&t.root, &roots),
            (&t.root, &roots_gvisor),
        ] {
            t.remove(who, id).await;
        }
    });
    t.finish();
}

#[test]
fn users_choose_runc_or_runsc_and_nothing_else() {
    runsc_installed();
    let t = Tenancy::with(Config::from_env().with_user_network(UserNetwork::None));
    bounded(async {
        let ask = |runtime: &str| {
            let mut spec = t.spec(&["true"]);
            spec.runtime = Some(runtime.into());
            ContainerCreate(spec)
        };
        let (refused, message) = code(t.alice.query(&ask("io.containerd.runc.v2")).await);
        assert_eq!(refused, ErrorCode::FORBIDDEN, "{message}");
        assert!(message.contains("runc or runsc"), "{message}");
        let (invalid, message) = code(t.alice.query(&ask("run sc")).await);
        assert_eq!(invalid, ErrorCode::INVALID_INPUT, "{message}");
        assert!(t.held().is_empty(), "a refused create made {:?}", t.held());

        let gvisor = t.alice.query(&ask(RUNSC)).await.unwrap().id;
        assert_eq!(runtime_of(&gvisor), RUNSC);
        let default = t
            .alice
            .query(&ContainerCreate(t.spec(&["true"])))
            .await
            .unwrap()
            .id;
        assert_eq!(runtime_of(&default), "runc");
        for id in [gvisor, default] {
            t.remove(&t.alice, &id).await;
        }
    });
    t.finish();
}

/// The Docker suite's exec scenarios, as alice, in containers the server
/// puts under runsc.
macro_rules! in_gvisor {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let t = gvisor_for_users(UserNetwork::None);
            bounded(async {
                let rig = Rig::over(t.served.client("alice"), None, ());
                docker::$name(&rig).await;
            });
            t.finish();
        }
    )*};
}

in_gvisor!(
    exec_gives_output_then_exit_code,
    exec_binary_output_is_exact_on_both_carriages,
    exec_an_interactive_shell_with_a_tty,
    exec_cat_echoes_64_mib,
    exec_resize_and_signal_reach_the_process,
);

#[test]
fn an_aborted_or_dropped_exec_leaves_nothing_running_in_gvisor() {
    let t = gvisor_for_users(UserNetwork::None);
    bounded(async {
        let id = t.sleeper(&t.alice, t.spec(&[])).await;
        assert_eq!(runtime_of(&id), RUNSC);
        let mut session = t
            .alice
            .open(&ExecInput::new(&id, ["sh", "-c", "sleep 1001; true"]))
            .await
            .unwrap();
        eventually("the exec runs", || runs_inside(&id, "sleep 1001")).await;
        session.control.abort().await.unwrap();
        assert!(session.exit.await.is_err());
        eventually("the aborted exec's processes are gone", || {
            !runs_inside(&id, "sleep 1001")
        })
        .await;

        let items = t
            .alice
            .subscribe(&ExecInput::new(&id, ["sleep", "1002"]))
            .await
            .unwrap();
        eventually("the json exec runs", || runs_inside(&id, "sleep 1002")).await;
        drop(items);
        eventually("the dropped exec's process is gone", || {
            !runs_inside(&id, "sleep 1002")
        })
        .await;
        t.remove(&t.alice, &id).await;
    });
    t.finish();
}

#[test]
fn a_dead_calls_exec_in_gvisor_is_killed_by_the_sweep_by_its_marker() {
    let t = gvisor_for_users(UserNetwork::None);
    bounded(async {
        let id = t.sleeper(&t.alice, t.spec(&[])).await;
        // An exec whose call died with a crashed server, as its journal
        // left it: a gVisor container's execs carry a marker even when
        // the server signals others by host pid.
        let marker = "0123456789abcdef0123456789abcdef";
        let exec_id = detached(&id, Some(marker), "sleep 641 & sleep 642; true").await;
        let journal = std::env::temp_dir().join(unique("gvisor-journal"));
        std::fs::create_dir_all(&journal).unwrap();
        std::fs::write(journal.join(&exec_id), format!("{id}\n{marker}\n")).unwrap();
        eventually("the exec runs", || {
            let ps = inside_ps(&id);
            ps.contains("sleep 641") && ps.contains("sleep 642")
        })
        .await;

        let restarted = DockerService::new(
            bollard::Docker::connect_with_local_defaults().unwrap(),
            Config::from_env()
                .with_exec_journal(&journal)
                .with_exec_signals(ExecSignals::HostPid),
        );
        restarted.sweep().await.unwrap();
        eventually("the exec's processes are gone", || {
            let ps = inside_ps(&id);
            !ps.contains("sleep 641") && !ps.contains("sleep 642")
        })
        .await;
        let left: Vec<_> = std::fs::read_dir(&journal).unwrap().collect();
        assert!(left.is_empty(), "the record is dropped: {left:?}");
        std::fs::remove_dir_all(&journal).unwrap();
        t.remove(&t.alice, &id).await;
    });
    t.finish();
}

#[test]
fn top_in_gvisor_lists_the_containers_own_processes() {
    let t = gvisor_for_users(UserNetwork::None);
    bounded(async {
        let id = t.sleeper(&t.alice, t.spec(&[])).await;
        let rows = |top: &bollard::models::ContainerTopResponse| -> Vec<String> {
            let processes = top.processes.clone().unwrap_or_default();
            processes.iter().map(|p| p.join(" ")).collect()
        };
        // What the engine itself answers is not the container's.
        let engines = on_engine(engine().top_processes(&id, None::<q::TopOptions>)).unwrap();
        assert!(
            !rows(&engines).iter().any(|r| r.contains("sleep 3600")),
            "{:?}",
            rows(&engines)
        );

        let top = t
            .alice
            .query(&ContainerTop {
                id: id.clone(),
                ps_args: None,
            })
            .await
            .unwrap();
        let titles = top.titles.clone().unwrap_or_default();
        assert_eq!(
            titles.first().map(String::as_str),
            Some("PID"),
            "{titles:?}"
        );
        let listed = rows(&top);
        assert_eq!(listed.len(), 1, "the sleep alone, not ps: {listed:?}");
        assert!(
            listed[0].starts_with("1 ") && listed[0].ends_with("sleep 3600"),
            "{listed:?}"
        );

        let top = t
            .alice
            .query(&ContainerTop {
                id: id.clone(),
                ps_args: Some("-o pid,args".into()),
            })
            .await
            .unwrap();
        assert_eq!(top.titles, Some(vec!["PID".into(), "COMMAND".into()]));
        assert_eq!(rows(&top), vec!["1 sleep 3600".to_owned()]);
        t.remove(&t.alice, &id).await;
    });
    t.finish();
}

#[test]
fn cp_into_and_out_of_tmp_in_gvisor_reach_its_own_tmp_and_elsewhere_the_engines() {
    let t = gvisor_for_users(UserNetwork::None);
    bounded(async {
        let id = t.sleeper(&t.alice, t.spec(&[])).await;
        let put = |path: &str| ArchivePut {
            id: id.clone(),
            path: path.into(),
        };
        let copy_in = async |path: &str, name: &str, data: &[u8]| {
            let mut session = t.alice.open(&put(path)).await.unwrap();
            session.stdin.write_all(&tar_of(name, data)).await.unwrap();
            session.stdin.close().await.unwrap();
            session.exit.await.unwrap()
        };
        // Into gVisor's own /tmp, however spelt: the container sees it.
        assert_eq!(copy_in("/tmp", "a.txt", b"alpha\n").await, 0);
        assert_eq!(copy_in("/etc/../tmp/", "b.txt", b"beta\n").await, 0);
        let (inside, status) = exec(&t.alice, &id, &["cat", "/tmp/a.txt", "/tmp/b.txt"])
            .await
            .unwrap();
        assert_eq!((inside.as_str(), status), ("alpha\nbeta\n", 0));
        // Into `/`, a tar's `tmp/` entry reaches the same /tmp.
        assert_eq!(copy_in("/", "tmp/root.txt", b"from root\n").await, 0);
        let (inside, status) = exec(&t.alice, &id, &["cat", "/tmp/root.txt"])
            .await
            .unwrap();
        assert_eq!((inside.as_str(), status), ("from root\n", 0));
        // As the engine's copy answers: a missing directory, a file.
        let (missing, message) = code(t.alice.open(&put("/tmp/none")).await.map(|_| ()));
        assert_eq!(missing, CONTAINER_NOT_FOUND, "{message}");
        let (file, message) = code(t.alice.open(&put("/tmp/a.txt")).await.map(|_| ()));
        assert_eq!(file, ErrorCode::INVALID_INPUT, "{message}");
        // Out of it: what is inside, with its stat, as the engine gives
        // them elsewhere (compared on /etc below).
        let get_of = |path: &str| ArchiveGet {
            id: id.clone(),
            path: path.into(),
        };
        let copy_out = async |path: &str| {
            let mut session = t.alice.open(&get_of(path)).await.unwrap();
            let stat: PathStat = serde_json::from_value(session.accepted.clone()).unwrap();
            let mut tar = Vec::new();
            session.stdout.read_to_end(&mut tar).await.unwrap();
            assert_eq!(session.exit.await.unwrap(), 0);
            let mut files = BTreeMap::new();
            for entry in tar::Archive::new(tar.as_slice()).entries().unwrap() {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().to_string_lossy().into_owned();
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
                files.insert(name, text);
            }
            (stat, files)
        };
        let (stat, files) = copy_out("/tmp/a.txt").await;
        assert_eq!((stat.name.as_str(), stat.size), ("a.txt", 6));
        assert_eq!(files, BTreeMap::from([("a.txt".into(), "alpha\n".into())]));
        let (dir, files) = copy_out("/tmp").await;
        assert_eq!(dir.name, "tmp");
        assert_ne!(dir.mode & (1 << 31), 0, "a directory: {dir:?}");
        assert_eq!(files.get("tmp/b.txt").map(String::as_str), Some("beta\n"));
        // A name that looks like an option is a name.
        exec(&t.alice, &id, &["sh", "-c", "echo dash > /tmp/--version"])
            .await
            .unwrap();
        let (_, files) = copy_out("/tmp/--version").await;
        assert_eq!(
            files,
            BTreeMap::from([("--version".into(), "dash\n".into())])
        );
        let (missing, message) = code(t.alice.open(&get_of("/tmp/none")).await.map(|_| ()));
        assert_eq!(missing, CONTAINER_NOT_FOUND, "{message}");

        // Elsewhere the engine's copy is right in both directions.
        assert_eq!(copy_in("/etc", "c.txt", b"gamma\n").await, 0);
        let (inside, status) = exec(&t.alice, &id, &["cat", "/etc/c.txt"]).await.unwrap();
        assert_eq!((inside.as_str(), status), ("gamma\n", 0));
        let (engines, files) = copy_out("/etc/c.txt").await;
        assert_eq!(files, BTreeMap::from([("c.txt".into(), "gamma\n".into())]));
        // The same file, unpacked from the same tar: the same stat.
        assert_eq!((engines.size, engines.mode), (stat.size, stat.mode));
        t.remove(&t.alice, &id).await;
    });
    t.finish();
}

#[test]
fn a_users_gvisor_container_is_fenced_off_the_host() {
    let t = gvisor_for_users(UserNetwork::Isolated);
    bounded(async {
        let cleanup = Cleanup::default();
        let alice: &DockerClient = &t.alice;
        let host = HostService::start();
        let hers = web(alice, &cleanup, "alice").await;
        assert_eq!(runtime_of(&hers), RUNSC);
        let (_, her_ip, gateway) = only_network(alice, &hers).await;
        for addr in [gateway.clone(), host_address()] {
            let (out, err, code) = get(alice, &hers, &addr, host.port).await;
            assert_ne!(code, 0, "the host's service answered on {addr}: {out:?}");
            assert!(out.is_empty(), "{out:?}");
            assert!(err.contains("refused"), "{addr}: {err}");
        }
        assert_eq!(host.accepted.load(Ordering::SeqCst), 0);
        // Positive control: the host reaches into her gVisor container on
        // her network (its network works, and replies pass the rules).
        let mut answer = String::new();
        for _ in 0..50 {
            answer = host_get(&her_ip, 8080).unwrap_or_default();
            if answer.contains("alice") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answer.ends_with("alice\n"), "{answer:?}");
        t.remove(alice, &hers).await;
    });
    t.finish();
}
