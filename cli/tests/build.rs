//! `dockwire build`, end to end through a `dockwire serve` process and
//! the engine's classic builder: a two-stage Dockerfile with a build arg,
//! `.dockerignore`, a failing step, `-q`, a Dockerfile on stdin, and a
//! 200 MiB context streamed with flat memory on both sides.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use dockwire_tests::Prng;
use dockwire_tests::docker::on_podman;

/// Removes the images the test built.
struct Built(Vec<String>);

impl Drop for Built {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

/// `VmHWM` of `pid` in KiB, 0 once it is gone.
fn hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn build_makes_what_the_dockerfile_says_and_streams_its_context() {
    let _turn = image_turn();
    let rig = Rig::new("build");
    let tag = unique("build");
    let (two, quiet, big) = (
        format!("{tag}-two"),
        format!("{tag}-q"),
        format!("{tag}-big"),
    );
    let built = Built(vec![two.clone(), quiet.clone(), big.clone()]);
    let dir = rig.scratch.join("context");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {IMAGE} AS first\n\
             ARG GREETING=none\n\
             COPY hello.txt /stage/hello.txt\n\
             RUN echo \"$GREETING from the first stage\" > /stage/said.txt && cat /stage/hello.txt >> /stage/said.txt\n\
             FROM {IMAGE}\n\
             COPY --from=first /stage/said.txt /out/said.txt\n\
             COPY . /ctx\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("hello.txt"), "hi there\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "not for the image\n").unwrap();
    std::fs::write(dir.join(".dockerignore"), "secret.txt\n").unwrap();
    let context = dir.to_str().unwrap();
    let ran = rig
        .admin
        .run(&[
            "build",
            "-t",
            &two,
            "--build-arg",
            "GREETING=hello",
            context,
        ])
        .ok();
    let out = ran.out();
    // Podman's builder (buildah) numbers steps per stage, and names
    // what it tags in full.
    let (first_step, tagged) = match on_podman() {
        false => (
            "Step 1/7 : FROM dockwire/testbox:latest AS first",
            format!(" {two}:latest\n"),
        ),
        true => (
            "STEP 1/4: FROM dockwire/testbox:latest AS first",
            format!("/{two}:latest\n"),
        ),
    };
    assert!(out.contains(first_step), "{out}");
    assert!(out.contains("Successfully tagged"), "{out}");
    assert!(out.contains(&tagged), "{out}");
    let inside = rig
        .admin
        .run(&[
            "run",
            "--rm",
            &two,
            "sh",
            "-c",
            "cat /out/said.txt; ls -a /ctx",
        ])
        .ok();
    assert_eq!(
        inside.out(),
        "hello from the first stage\nhi there\n.\n..\n.dockerignore\nDockerfile\nhello.txt\n"
    );

    // A failing step: exit 1, the step and its status named.
    let failing = rig.scratch.join("failing");
    std::fs::create_dir_all(&failing).unwrap();
    std::fs::write(
        failing.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo before && exit 3\n"),
    )
    .unwrap();
    let failed = rig.admin.run(&["build", failing.to_str().unwrap()]);
    assert_eq!(failed.code(), 1, "{}", failed.dump());
    let (step, status) = match on_podman() {
        false => (
            "Step 2/2 : RUN echo before && exit 3",
            "The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3",
        ),
        true => (
            "STEP 2/2: RUN echo before && exit 3",
            "building at STEP \"RUN echo before && exit 3\": while running runtime: exit status 3",
        ),
    };
    assert!(failed.out().contains(step), "{}", failed.dump());
    let line = failed.failed(Some("BUILD_FAILED"));
    assert!(line.contains(status), "{line}");

    // -q: the id only; a Dockerfile on stdin.
    let dockerfile = format!("FROM {IMAGE}\nLABEL made=by-stdin\n");
    let q = rig
        .admin
        .run_in(&["build", "-q", "-t", &quiet, "-"], dockerfile.as_bytes())
        .ok();
    let id = q.out();
    // Podman's builder prints the id without its algorithm.
    let hex = id.strip_prefix("sha256:").unwrap_or(&id);
    assert!(
        (id.starts_with("sha256:") || on_podman())
            && hex.len() == 65
            && hex.ends_with('\n')
            && hex.trim().bytes().all(|b| b.is_ascii_hexdigit()),
        "{}",
        q.dump()
    );
    let label = docker(&["inspect", "-f", "{{.Id}} {{.Config.Labels.made}}", &quiet]).ok();
    assert_eq!(label.out(), format!("sha256:{} by-stdin\n", hex.trim()));

    // 200 MiB of context, streamed: neither end holds it.
    let large = rig.scratch.join("large");
    std::fs::create_dir_all(&large).unwrap();
    std::fs::write(
        large.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN true\n"),
    )
    .unwrap();
    {
        use std::io::Write as _;
        let mut file = std::io::BufWriter::new(std::fs::File::create(large.join("big")).unwrap());
        let mut prng = Prng(7);
        for _ in 0..200 {
            file.write_all(&prng.bytes(1 << 20)).unwrap();
        }
        file.flush().unwrap();
    }
    let server_before = hwm(rig.server.pid());
    let running = start(
        &mut rig
            .admin
            .command(&["build", "-t", &big, large.to_str().unwrap()]),
        None,
    );
    let (stop, peak) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let sampler = {
        let (stop, peak, pid) = (stop.clone(), peak.clone(), running.pid());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                peak.fetch_max(hwm(pid), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let ran = running.finish(Duration::from_secs(300)).ok();
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert!(
        ["Sending build context", "Step 1/2", "STEP 1/2"]
            .iter()
            .any(|said| ran.out().contains(said)),
        "{}",
        ran.dump()
    );
    let client_kib = peak.load(Ordering::SeqCst);
    let server_growth = hwm(rig.server.pid()).saturating_sub(server_before);
    assert!(
        client_kib > 0 && client_kib < 64 << 10,
        "the client peaked at {client_kib} KiB"
    );
    assert!(
        server_growth < 64 << 10,
        "the server grew by {server_growth} KiB"
    );
    drop(built);
}

#[test]
fn commit_tag_push_and_pull_back_give_the_same_image() {
    let _turn = image_turn();
    let rig = Rig::new("commit");
    let tag = unique("commit");
    let repo = format!("127.0.0.1:5000/dockwire-test/{tag}");
    let (v1, v2) = (format!("{repo}:v1"), format!("{repo}:v2"));
    let _built = Built(vec![v1.clone(), v2.clone()]);
    let name = rig.containers.name("commit");
    rig.admin
        .run(&["run", "-d", "--name", &name, IMAGE, "sleep", "600"])
        .ok();
    rig.admin
        .run(&["exec", &name, "sh", "-c", "echo committed > /made.txt"])
        .ok();
    let committed = rig
        .admin
        .run(&[
            "commit",
            "-m",
            "with a file",
            "--change",
            "CMD [\"cat\", \"/made.txt\"]",
            &name,
            &v1,
        ])
        .ok();
    let id = committed.out().trim().to_owned();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "{}",
        committed.dump()
    );
    assert_eq!(
        rig.admin.run(&["run", "--rm", &v1]).ok().out(),
        "committed\n"
    );

    rig.admin.run(&["tag", &v1, &v2]).ok();
    let seen = rig
        .admin
        .run(&["image", "inspect", "--format", "{{.Id}} {{.Comment}}", &v2])
        .ok();
    assert_eq!(seen.out(), format!("{id} with a file\n"));

    let pushed = rig.admin.run(&["push", &v2]).ok();
    assert!(
        pushed.out().contains("v2: digest: sha256:"),
        "{}",
        pushed.dump()
    );
    rig.admin.run(&["rm", "-f", &name]).ok();
    rig.admin.run(&["rmi", &v1, &v2]).ok();
    let gone = rig.admin.run(&["image", "inspect", &v2]);
    assert_ne!(gone.code(), 0, "{}", gone.dump());
    rig.admin.run(&["pull", &v2]).ok();
    assert_eq!(
        rig.admin.run(&["run", "--rm", &v2]).ok().out(),
        "committed\n"
    );
    let unknown = rig.admin.run(&["push", &format!("{repo}:nope")]);
    let line = unknown.failed(None);
    assert!(line.contains("push"), "{line}");
}
