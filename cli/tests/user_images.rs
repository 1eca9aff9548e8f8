//! Users' images, end to end through a `dockwire serve` process and the
//! engine's classic builder: what one user builds, commits or tags is its
//! own, invisible and unusable to another (by name, by id, by the
//! engine's name in its namespace, through a build's `FROM` or
//! `COPY --from`), and never takes a shared name; a user's build is
//! confined (its context's size and its time capped, no URL fetched by
//! the host, no variable image, nothing read outside its context).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Removes every image sealed as one of `owners`' on drop.
struct OwnedImages(Vec<String>);

impl Drop for OwnedImages {
    fn drop(&mut self) {
        for owner in &self.0 {
            let filter = format!("label=dockwire.image-owner=sha256:{owner}");
            let ids = docker(&["images", "-q", "--filter", &filter]).out();
            for id in ids.split_whitespace() {
                let _ = docker(&["rmi", "-f", id]);
            }
        }
    }
}

/// Removes the networks made for `owners` (their default networks, made
/// on their first container or build) through the server, so that their
/// host rules go with them.
fn remove_networks(admin: &Client, owners: &[String]) {
    for owner in owners {
        let filter = format!("label=dockwire.owner=sha256:{owner}");
        let names = docker(&["network", "ls", "-q", "--filter", &filter]).out();
        for id in names.split_whitespace() {
            admin.run(&["network", "rm", id]).ok();
        }
    }
}

/// A build context in `dir` with `dockerfile` and `files`.
fn context(dir: &Path, dockerfile: &str, files: &[(&str, &[u8])]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    for (name, data) in files {
        std::fs::write(dir.join(name), data).unwrap();
    }
    dir.to_str().unwrap().to_owned()
}

fn image_id(client: &Client, reference: &str) -> String {
    let ran = client
        .run(&["image", "inspect", "--format", "{{.Id}}", reference])
        .ok();
    ran.out().trim().to_owned()
}

#[test]
fn what_a_user_builds_commits_or_tags_is_its_own_and_invisible_to_another() {
    let _turn = image_turn();
    let rig = Rig::with("user-images", &["--allow-registry", "127.0.0.1:5000"]);
    let alice = rig.client("alice", false);
    let bob = rig.client("bob", false);
    let _cleanup = OwnedImages(vec![alice.fingerprint(), bob.fingerprint()]);
    let shared_before = docker(&["image", "inspect", "-f", "{{.Id}}", IMAGE])
        .ok()
        .out();

    // Alice builds app:1 (a COPY, a RUN, a build arg) and runs it.
    let note = unique("note");
    let dir = context(
        &rig.scratch.join("app"),
        &format!(
            "FROM {IMAGE} AS base\nARG WHO=nobody\nCOPY note.txt /note.txt\n\
             RUN echo \"built by $WHO\" > /built.txt\nFROM base\nRUN cat /built.txt\n"
        ),
        &[("note.txt", note.as_bytes())],
    );
    let built = alice
        .run(&["build", "-t", "app:1", "--build-arg", "WHO=alice", &dir])
        .ok();
    assert!(
        built.out().contains("Successfully tagged app:1"),
        "{}",
        built.dump()
    );
    assert!(!built.out().contains("dw-"), "{}", built.dump());
    let ran = alice
        .run(&["run", "--rm", "app:1", "cat", "/note.txt", "/built.txt"])
        .ok();
    assert_eq!(ran.out(), format!("{note}built by alice\n"));
    let id = image_id(&alice, "app:1");
    assert!(id.starts_with("sha256:"), "{id}");

    // Her list shows it by her name; Bob's shows neither it nor any
    // untagged layer of her build.
    let hers = alice
        .run(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .ok();
    assert!(hers.out().lines().any(|l| l == "app:1"), "{}", hers.dump());
    let his = bob.run(&["images", "-a", "--no-trunc", "-q"]).ok();
    assert!(!his.out().contains(&id), "{}", his.dump());
    let everything = docker(&["images", "-a", "-q", "--no-trunc"]).ok().out();
    let his_count = his.out().lines().count();
    assert!(
        his_count < everything.lines().count(),
        "Bob sees every image:\n{}",
        his.dump()
    );
    assert!(!bob.run(&["images"]).ok().out().contains("app"));

    // Bob, by her name, her id, her engine name: what a missing image gets.
    let engine_name = docker(&["image", "inspect", "-f", "{{index .RepoTags 0}}", &id])
        .ok()
        .out()
        .trim()
        .to_owned();
    // Podman names it in full (`localhost/…` or `docker.io/…`).
    let short = ["localhost/", "docker.io/"]
        .iter()
        .find_map(|registry| engine_name.strip_prefix(registry))
        .unwrap_or(&engine_name);
    assert!(
        short.starts_with("dw-") && short.ends_with("/app:1"),
        "{engine_name}"
    );
    for reference in [id.as_str(), &id[7..19], engine_name.as_str()] {
        let inspected = bob.run(&["image", "inspect", reference]);
        assert_eq!(inspected.code(), 1, "{}", inspected.dump());
        let line = inspected.failed(Some("IMAGE_NOT_FOUND"));
        assert!(
            line.contains(&format!("No such image: {reference}")),
            "{line}"
        );
        // As for a missing image: not found, so pulled (and not there).
        let created = bob.run(&["create", reference, "true"]);
        assert_ne!(created.code(), 0, "{}", created.dump());
        assert!(
            created.err().contains("Unable to find image"),
            "{}",
            created.dump()
        );
        let tagged = bob.run(&["tag", reference, "stolen:1"]);
        assert_eq!(tagged.code(), 1, "{}", tagged.dump());
        let removed = bob.run(&["rmi", reference]);
        assert_eq!(removed.code(), 1, "{}", removed.dump());
    }
    // ...nor through a build of his.
    for (what, dockerfile) in [
        ("FROM by id", format!("FROM {id}\n")),
        ("FROM by engine name", format!("FROM {engine_name}\n")),
        (
            "COPY --from by id",
            format!("FROM {IMAGE}\nCOPY --from={id} /note.txt /stolen\n"),
        ),
    ] {
        let dir = context(&rig.scratch.join(&unique("steal")), &dockerfile, &[]);
        let stolen = bob.run(&["build", "-t", "stolen:1", &dir]);
        assert_eq!(stolen.code(), 1, "{what}: {}", stolen.dump());
        let line = stolen.failed(Some("IMAGE_NOT_FOUND"));
        assert!(line.contains("No such image"), "{what}: {line}");
    }
    assert_eq!(bob.run(&["image", "inspect", "stolen:1"]).code(), 1);
    // Bob's own app:1 is his, and leaves hers alone.
    let bobs = context(
        &rig.scratch.join("bobs"),
        &format!("FROM {IMAGE}\nLABEL who=bob\n"),
        &[],
    );
    bob.run(&["build", "-q", "-t", "app:1", &bobs]).ok();
    assert_ne!(image_id(&bob, "app:1"), id);
    assert_eq!(image_id(&alice, "app:1"), id);

    // Commit: her container's file in her new image, which Bob cannot use.
    let container = rig.containers.name("commit-me");
    alice
        .run(&[
            "run",
            "-d",
            "--name",
            &container,
            IMAGE,
            "sh",
            "-c",
            "echo committed > /c.txt; sleep 300",
        ])
        .ok();
    eventually("the file is written", Duration::from_secs(20), || {
        let ran = alice.run(&["exec", &container, "cat", "/c.txt"]);
        (ran.code() == 0).then_some(()).ok_or(ran.dump())
    });
    alice.run(&["commit", &container, "snap:1"]).ok();
    let snap = alice.run(&["run", "--rm", "snap:1", "cat", "/c.txt"]).ok();
    assert_eq!(snap.out(), "committed\n");
    let snap_id = image_id(&alice, "snap:1");
    assert_eq!(bob.run(&["image", "inspect", &snap_id]).code(), 1);
    let bob_snap = bob.run(&["create", "snap:1", "true"]);
    assert_ne!(bob_snap.code(), 0, "{}", bob_snap.dump());
    // Bob cannot commit her container either.
    let commit = bob.run(&["commit", &container, "mine:1"]);
    assert_eq!(commit.code(), 1, "{}", commit.dump());
    alice.run(&["rm", "-f", &container]).ok();

    // A tag of hers never takes a shared name: the shared image keeps it.
    alice.run(&["tag", "app:1", IMAGE]).ok();
    let shared_after = docker(&["image", "inspect", "-f", "{{.Id}}", IMAGE])
        .ok()
        .out();
    assert_eq!(shared_after, shared_before);
    assert_eq!(image_id(&alice, IMAGE), id, "her own name comes first");
    assert_ne!(image_id(&bob, IMAGE), id);
    // A shared image is not hers to remove; her own name of it is.
    let shared_rm = bob.run(&["rmi", IMAGE]);
    assert_eq!(shared_rm.code(), 1, "{}", shared_rm.dump());
    alice.run(&["rmi", IMAGE]).ok();
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Id}}", IMAGE])
            .ok()
            .out(),
        shared_before
    );

    // Push to the allowed local registry: under her namespace there; Bob
    // cannot push her name.
    let pushed_name = format!("127.0.0.1:5000/{}:1", unique("pushed"));
    alice.run(&["tag", "app:1", &pushed_name]).ok();
    let pushed = alice.run(&["push", &pushed_name]).ok();
    assert!(!pushed.out().contains("dw-") || pushed.out().contains("repository"));
    let namespace = short.split('/').next().unwrap().to_owned();
    let repo = pushed_name
        .trim_start_matches("127.0.0.1:5000/")
        .trim_end_matches(":1");
    let catalog = std::process::Command::new("curl")
        .args([
            "-s",
            &format!("http://127.0.0.1:5000/v2/{namespace}/{repo}/tags/list"),
        ])
        .output()
        .unwrap();
    let tags = String::from_utf8_lossy(&catalog.stdout).into_owned();
    assert!(tags.contains("\"1\""), "{tags}");
    let bob_push = bob.run(&["push", &pushed_name]);
    assert_eq!(bob_push.code(), 1, "{}", bob_push.dump());

    // Her removal of her own image by name.
    alice.run(&["rmi", &pushed_name]).ok();
    alice.run(&["rmi", "app:1"]).ok();
    assert_eq!(alice.run(&["image", "inspect", "app:1"]).code(), 1);
    remove_networks(&rig.admin, &[alice.fingerprint(), bob.fingerprint()]);
}

#[test]
fn a_users_build_is_capped_in_size_and_time_and_fetches_nothing() {
    let _turn = image_turn();
    let rig = Rig::with(
        "user-build-limits",
        &[
            "--user-build-context-max",
            "1m",
            "--user-build-timeout",
            "4s",
        ],
    );
    let alice = rig.client("alice", false);
    let _cleanup = OwnedImages(vec![alice.fingerprint()]);

    // A context over the cap: refused, nothing made.
    let big = vec![7u8; 4 << 20];
    let dir = context(
        &rig.scratch.join("big"),
        &format!("FROM {IMAGE}\nCOPY big.bin /big.bin\n"),
        &[("big.bin", &big)],
    );
    let refused = alice.run(&["build", "-t", "big:1", &dir]);
    assert_eq!(refused.code(), 1, "{}", refused.dump());
    let line = refused.failed(Some("FORBIDDEN"));
    assert!(line.contains("--user-build-context-max"), "{line}");
    assert_eq!(alice.run(&["image", "inspect", "big:1"]).code(), 1);
    // An admin's is not capped.
    let admins = rig.admin.run(&["build", "-q", &dir]).ok();
    let _ = docker(&["rmi", "-f", admins.out().trim()]);

    // A build past its time: ended, and its step's container gone.
    let marker = unique("slow");
    let dir = context(
        &rig.scratch.join("slow"),
        &format!("FROM {IMAGE}\nRUN sleep 60 && echo {marker}\n"),
        &[],
    );
    let started = Instant::now();
    let slow = alice.run(&["build", &dir]);
    assert_eq!(slow.code(), 1, "{}", slow.dump());
    let line = slow.failed(Some("TIMEOUT"));
    assert!(line.contains("--user-build-timeout"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(30));
    eventually(
        "the build's container is gone",
        Duration::from_secs(30),
        || {
            let all = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]).out();
            (!all.contains(&marker)).then_some(()).ok_or(all)
        },
    );

    // The engine's host fetches nothing for a user, and no image is
    // named through a variable; --pull is refused.
    for (what, dockerfile) in [
        (
            "ADD of a URL",
            format!("FROM {IMAGE}\nADD http://127.0.0.1:5000/v2/ /x\n"),
        ),
        ("a variable FROM", format!("ARG B={IMAGE}\nFROM $B\n")),
    ] {
        let dir = context(&rig.scratch.join(&unique("refused")), &dockerfile, &[]);
        let ran = alice.run(&["build", &dir]);
        assert_eq!(ran.code(), 1, "{what}: {}", ran.dump());
        ran.failed(Some("INVALID_INPUT"));
    }
    let ok = context(&rig.scratch.join("ok"), &format!("FROM {IMAGE}\n"), &[]);
    let pull = alice.run(&["build", "--pull", &ok]);
    assert_eq!(pull.code(), 1, "{}", pull.dump());

    // Nothing outside the context: a symlink to a host file is copied as
    // a link, and a path up out of it is not found.
    let secret = unique("host-secret");
    let outside = rig.scratch.join("outside.txt");
    std::fs::write(&outside, &secret).unwrap();
    let dir = rig.scratch.join("links");
    context(
        &dir,
        &format!("FROM {IMAGE}\nCOPY link /link\nRUN cat /link || echo unreadable\n"),
        &[],
    );
    std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
    let linked = alice.run(&["build", dir.to_str().unwrap()]);
    assert!(!linked.out().contains(&secret), "{}", linked.dump());
    let up = context(
        &rig.scratch.join("up"),
        &format!("FROM {IMAGE}\nCOPY ../outside.txt /x\n"),
        &[],
    );
    let escaped = alice.run(&["build", &up]);
    assert_eq!(escaped.code(), 1, "{}", escaped.dump());
    assert!(!escaped.out().contains(&secret));
    remove_networks(&rig.admin, &[alice.fingerprint()]);
}
