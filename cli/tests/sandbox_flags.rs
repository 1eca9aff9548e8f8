//! `dockwire run`'s sandbox flags and `dockwire update`, end to end: a
//! `dockwire serve` process, `dockwire` clients, the real engine, and the
//! docker CLI beside them giving the bytes and codes to match.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use dockwire_tests::docker::{on_podman, skipped_on_podman};
use dockwire_tests::user_networks::UserNetworks;

/// Reads the container's own memory and pids limits from its cgroup (v1
/// or v2).
const LIMITS: &str = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max";

#[test]
fn run_rm_with_memory_and_pids_limit_runs_as_docker_run_does() {
    let rig = Rig::new("sandbox-run");
    let flags = ["--rm", "--memory", "64m", "--pids-limit", "32"];
    let ours = rig.containers.name("sandbox-run");
    let theirs = rig.containers.name("sandbox-docker");
    let cmd = ["sh", "-c", LIMITS];
    let args = |name: &str| -> Vec<String> {
        ["run", "--name", name]
            .iter()
            .chain(&flags)
            .chain(&[IMAGE])
            .chain(&cmd)
            .map(|s| (*s).to_owned())
            .collect()
    };
    let ran = rig.admin.run(&as_strs(&args(&ours))).ok();
    let docker_ran = docker(&as_strs(&args(&theirs))).ok();
    assert_eq!(ran.out(), "67108864\n32\n", "{}", ran.dump());
    assert_same_bytes("run's output", &ran.stdout, &docker_ran.stdout);
    assert!(!exists(&ours), "--rm left the container");

    // More of docker's flags, each with its effect: an env file (before
    // -e), -h, --read-only, --ulimit, --cap-drop, --init, --tmpfs.
    let env_file = rig.scratch.join("env");
    std::fs::write(&env_file, "# comment\nA=from file\nB=file\n\n").unwrap();
    let script = "echo $A/$B; hostname; ulimit -n; touch /tmp/x && echo tmp; cat /proc/1/comm; ping -c1 -W1 127.0.0.1 >/dev/null 2>&1; echo ping $?; touch /x";
    let flags = |name: &str| -> Vec<String> {
        let env_file = env_file.to_str().unwrap();
        [
            "run",
            "--rm",
            "--name",
            name,
            "--env-file",
            env_file,
            "-e",
            "B=dash-e",
            "-h",
            "box",
            "--read-only",
            "--tmpfs",
            "/tmp:size=1m",
            "--ulimit",
            "nofile=100:200",
            "--cap-drop",
            "NET_RAW",
            "--init",
            IMAGE,
            "sh",
            "-c",
            script,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let ours = rig.containers.name("sandbox-flags");
    let theirs = rig.containers.name("sandbox-flags-docker");
    let ran = rig.admin.run(&as_strs(&flags(&ours)));
    let docker_ran = docker(&as_strs(&flags(&theirs)));
    // Podman's init is podman-init.
    let init = if on_podman() {
        "podman-init"
    } else {
        "docker-init"
    };
    assert_eq!(
        ran.out(),
        format!("from file/dash-e\nbox\n100\ntmp\n{init}\nping 1\n"),
        "{}",
        ran.dump()
    );
    assert_eq!(ran.err(), "touch: /x: Read-only file system\n");
    assert_eq!(ran.code(), 1);
    if !skipped_on_podman(
        "the docker CLI's --ulimit nofile on Podman fails to start the container (Podman then \
         asks for 1,048,576 processes; dockwire gives its own hard limit)",
    ) {
        assert_same_bytes("the flags' output", &ran.stdout, &docker_ran.stdout);
        assert_eq!(docker_ran.code(), 1);
    }

    // Nonsense is refused by the server before anything is made.
    let ran = rig
        .admin
        .run(&["run", "--rm", "--memory", "lots", IMAGE, "true"]);
    let line = ran.failed(Some("INVALID_INPUT"));
    assert!(line.contains("memory: \"lots\" is not a size"), "{line}");
}

#[test]
fn update_changes_a_running_containers_limits_within_a_users_cap() {
    let networks = UserNetworks::of(Vec::<String>::new());
    let rig = Rig::new("sandbox-update");
    let name = rig.containers.name("sandbox-update");
    rig.admin
        .run(&[
            "run", "-d", "--name", &name, "-m", "64m", IMAGE, "sleep", "600",
        ])
        .ok();
    let update = [
        "update",
        "-m",
        "128m",
        "--memory-swap",
        "256m",
        "--pids-limit",
        "50",
        &name,
    ];
    if on_podman() {
        // Podman's compat API has no update: refused, as docker/README.md
        // says, and the container keeps its limit.
        let line = rig.admin.run(&update).failed(Some("NOT_SUPPORTED"));
        assert!(
            line.contains("cannot update a container's limits"),
            "{line}"
        );
        let inspect = rig.admin.run(&["inspect", &name]).ok();
        let seen: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(seen[0]["HostConfig"]["Memory"], 64 << 20);
        rig.admin.run(&["rm", "-f", &name]).ok();
        drop(networks);
        return;
    }
    let updated = rig.admin.run(&update).ok();
    assert_eq!(updated.out(), format!("{name}\n"));
    let inspect = rig.admin.run(&["inspect", &name]).ok();
    let seen: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let host = &seen[0]["HostConfig"];
    assert_eq!(host["Memory"], 128 << 20);
    assert_eq!(host["PidsLimit"], 50);
    let limits = rig.admin.run(&["exec", &name, "sh", "-c", LIMITS]).ok();
    assert_eq!(limits.out(), format!("{}\n50\n", 128 << 20));

    // A user: the policy's defaults, and its cap.
    let alice = rig.client("alice", false);
    networks.add(format!("sha256:{}", alice.fingerprint()));
    let id = alice
        .run(&["run", "-d", IMAGE, "sleep", "600"])
        .ok()
        .out()
        .trim()
        .to_owned();
    rig.containers.add(&id);
    let limits = alice.run(&["exec", &id, "sh", "-c", LIMITS]).ok();
    assert_eq!(limits.out(), format!("{}\n512\n", 1 << 30));
    let over = alice.run(&["update", "-m", "5g", &id]);
    let line = over.failed(Some("FORBIDDEN"));
    assert!(
        line.contains("memory 5g is above this server's cap for users (4g)"),
        "{line}"
    );
    let ran = alice.run(&["run", "--rm", "--pids-limit", "-1", IMAGE, "true"]);
    let line = ran.failed(Some("FORBIDDEN"));
    assert!(line.contains("pids-limit unlimited is above"), "{line}");
    alice.run(&["update", "--pids-limit", "64", &id]).ok();
    let limits = alice.run(&["exec", &id, "sh", "-c", LIMITS]).ok();
    assert_eq!(limits.out(), format!("{}\n64\n", 1 << 30));
    rig.admin.run(&["rm", "-f", &name, &id]).ok();
}

#[test]
fn serve_policy_flags_set_a_users_defaults_and_caps() {
    let networks = UserNetworks::of(Vec::<String>::new());
    let rig = Rig::with(
        "sandbox-policy",
        &[
            "--user-memory",
            "96m",
            "--user-memory-max",
            "256m",
            "--user-pids",
            "40",
            "--admin-pids",
            "300",
        ],
    );
    let alice = rig.client("alice", false);
    networks.add(format!("sha256:{}", alice.fingerprint()));
    let ran = alice.run(&["run", "--rm", IMAGE, "sh", "-c", LIMITS]).ok();
    assert_eq!(ran.out(), format!("{}\n40\n", 96 << 20));
    let ran = alice.run(&["run", "--rm", "-m", "512m", IMAGE, "true"]);
    let line = ran.failed(Some("FORBIDDEN"));
    assert!(
        line.contains("memory 512m is above this server's cap for users (256m)"),
        "{line}"
    );
    // The admin: the operator's default pids, no memory limit, no cap.
    let ran = rig
        .admin
        .run(&["run", "--rm", "-m", "512m", IMAGE, "sh", "-c", LIMITS])
        .ok();
    assert_eq!(ran.out(), format!("{}\n300\n", 512 << 20));
    // A default above its cap: serve refuses to start.
    let scratch = Scratch::new("sandbox-policy-bad");
    let bad = run_with(
        dockwire().args([
            "--state-dir",
            scratch.join("state").to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--user-memory",
            "8g",
        ]),
        None,
        std::time::Duration::from_secs(30),
    );
    assert_eq!(
        bad.failed(None),
        "dockwire: serve: --user-memory is above --user-memory-max"
    );
}

/// The host port `docker port` gives for `container`'s 8080: (address,
/// port) lines.
fn docker_port(container: &str) -> String {
    docker(&["port", container, "8080"]).ok().out()
}

/// An HTTP GET of `127.0.0.1:port`, once the server inside answers.
fn answer(port: &str) -> String {
    let port: u16 = port.parse().unwrap();
    for _ in 0..150 {
        let answer = dockwire_tests::reach::host_get("127.0.0.1", port);
        if answer.contains(" 200 OK") {
            return answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nothing answers on 127.0.0.1:{port}")
}

#[test]
fn create_and_publish_work_as_docker_create_and_run_p_do() {
    let networks = UserNetworks::of(Vec::<String>::new());
    let allowed = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let range = format!("{allowed}-{allowed}");
    let rig = Rig::with("sandbox-publish", &["--user-publish-ports", &range]);
    let web = dockwire_tests::reach::web_cmd("created");
    let web: Vec<&str> = web.iter().map(String::as_str).collect();

    // `create` prints the id of a container that is created, not started,
    // with its port published where asked.
    let name = rig.containers.name("sandbox-create");
    let mut args = vec!["create", "--name", &name, "-p", "127.0.0.1::8080", IMAGE];
    args.extend(&web);
    let created = rig.admin.run(&args).ok();
    let id = created.out().trim().to_owned();
    assert_eq!(id.len(), 64, "{}", created.dump());
    let status = docker(&["inspect", "-f", "{{.State.Status}}", &name]).ok();
    assert_eq!(status.out(), "created\n");
    rig.admin.run(&["start", &name]).ok();
    let bound = docker_port(&name);
    let port = bound.trim().strip_prefix("127.0.0.1:").expect(&bound);
    assert!(answer(port).ends_with("\r\n\r\ncreated\n"));
    let listed = rig
        .admin
        .run(&["ps", "--filter", &format!("name={name}")])
        .ok();
    assert!(
        listed
            .out()
            .contains(&format!("127.0.0.1:{port}->8080/tcp")),
        "{}",
        listed.dump()
    );

    // A user: only on 127.0.0.1 and the operator's ports.
    let alice = rig.client("alice", false);
    networks.add(format!("sha256:{}", alice.fingerprint()));
    let refused = alice.run(&["run", "-d", "-p", "0.0.0.0::8080", IMAGE, "true"]);
    let line = refused.failed(Some("FORBIDDEN"));
    assert!(
        line.contains("a user publishes only on 127.0.0.1"),
        "{line}"
    );
    let publish = format!("{allowed}:8080");
    let mut args = vec!["run", "-d", "-p", &publish, IMAGE];
    args.extend(&web);
    let id = alice.run(&args).ok().out().trim().to_owned();
    rig.containers.add(&id);
    assert_eq!(docker_port(&id), format!("127.0.0.1:{allowed}\n"));
    assert!(answer(&allowed).ends_with("\r\n\r\ncreated\n"));
    // A malformed -p is refused before the server is asked.
    let bad = alice.run(&["run", "-p", "80-81:80", IMAGE, "true"]);
    let line = bad.failed(None);
    assert!(
        line.contains("-p 80-81:80: a host port range needs"),
        "{line}"
    );
    rig.admin.run(&["rm", "-f", &name, &id]).ok();
}
