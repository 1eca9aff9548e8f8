//! `--format`: Go templates give the same text as the docker CLI's on the
//! same objects of the same engine, for `ps`, `images`, `network ls`,
//! `volume ls`, `volume inspect`, `inspect`, `version` and `info` (a table of templates, `table`
//! forms included). The objects are made with docker itself; dockwire
//! reads them through `dockwire serve` as an admin.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use dockwire_tests::docker::on_podman;

/// Removes what the test made with docker, even when it fails.
struct Made {
    containers: Vec<String>,
    network: String,
    volume: String,
}

impl Drop for Made {
    fn drop(&mut self) {
        let mut rm = vec!["rm", "-f"];
        rm.extend(self.containers.iter().map(String::as_str));
        let _ = docker(&rm);
        let _ = docker(&["network", "rm", &self.network]);
        let _ = docker(&["volume", "rm", "-f", &self.volume]);
    }
}

#[test]
fn format_templates_give_dockers_text() {
    let rig = Rig::new("format");
    let tag = unique("format");
    let label = format!("dockwire.test.format={tag}");
    let made = Made {
        containers: vec![format!("{tag}-web"), format!("{tag}-done")],
        network: format!("{tag}-net"),
        volume: format!("{tag}-vol"),
    };
    docker(&["network", "create", "--label", &label, &made.network]).ok();
    docker(&["volume", "create", "--label", &label, &made.volume]).ok();
    let mount = format!("{}:/data", made.volume);
    docker(&[
        "run",
        "-d",
        "--name",
        &made.containers[0],
        "--label",
        &label,
        "--network",
        &made.network,
        "-p",
        "127.0.0.1::8080",
        "-v",
        &mount,
        "-e",
        "GREETING=hi",
        IMAGE,
        "sleep",
        "600",
    ])
    .ok();
    docker(&[
        "run",
        "--name",
        &made.containers[1],
        "--label",
        &label,
        IMAGE,
        "sh",
        "-c",
        "echo a very long command line indeed",
    ])
    .ok();

    let by_label = format!("label={label}");
    let ps = ["ps", "-a", "--filter", &by_label, "--format"];
    let images = [
        "images",
        "--filter",
        "reference=dockwire/testbox",
        "--format",
    ];
    let net_name = format!("name={}", made.network);
    let networks = ["network", "ls", "--filter", &net_name, "--format"];
    let vol_name = format!("name={}", made.volume);
    let volumes = ["volume", "ls", "--filter", &vol_name, "--format"];
    let web = made.containers[0].as_str();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (ps.to_vec(), "{{.Names}}"),
        (ps.to_vec(), "{{.ID}} {{.Image}}"),
        (ps.to_vec(), "{{.Command}}"),
        (ps.to_vec(), "{{.State}}"),
        (ps.to_vec(), "{{.Networks}} {{.Ports}}"),
        (ps.to_vec(), "{{.Mounts}} {{.LocalVolumes}}"),
        (ps.to_vec(), "{{.CreatedAt}}"),
        (ps.to_vec(), "table {{.ID}}\\t{{.Names}}\\t{{.Image}}"),
        (
            ps.to_vec(),
            "{{json .Names}} {{.Names | upper}} {{title .State}}",
        ),
        (
            ps.to_vec(),
            "{{.Names}}\\t{{truncate .Names 3}}|{{pad .State 1 1}}|",
        ),
        (
            images.to_vec(),
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}",
        ),
        (
            images.to_vec(),
            "table {{.Repository}}\\t{{.Tag}}\\t{{.Size}}",
        ),
        (images.to_vec(), "{{.CreatedAt}}"),
        (networks.to_vec(), "{{.Name}} {{.Driver}} {{.Scope}}"),
        (networks.to_vec(), "{{.ID}} {{.Internal}} {{.IPv6}}"),
        (networks.to_vec(), "{{.Labels}}"),
        (networks.to_vec(), "{{.CreatedAt}}"),
        (networks.to_vec(), "table {{.Name}}\\t{{.Driver}}"),
        (
            volumes.to_vec(),
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}}",
        ),
        (volumes.to_vec(), "{{.Mountpoint}}"),
        (volumes.to_vec(), "table {{.Name}}\\t{{.Driver}}"),
        (
            vec!["volume", "inspect", &made.volume, "--format"],
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Mountpoint}}",
        ),
        (
            vec!["volume", "inspect", &made.volume, "--format"],
            "{{json .Labels}} {{.CreatedAt}}",
        ),
        (
            vec!["inspect", web, "--format"],
            "{{.State.Status}} {{.State.Running}} {{.Name}}",
        ),
        (
            vec!["inspect", web, "--format"],
            "{{.Config.Image}} {{.HostConfig.Memory}}",
        ),
        (
            vec!["inspect", web, "--format"],
            "{{range .Config.Env}}{{println .}}{{end}}",
        ),
        (
            vec!["inspect", web, "--format"],
            "{{index .Config.Labels \"dockwire.test.format\"}}",
        ),
        (
            vec!["inspect", web, "--format"],
            "{{json .Config.Cmd}} {{len .Mounts}}",
        ),
        (
            vec!["inspect", web, "--format"],
            "{{join .Config.Cmd \"+\"}} {{lower .State.Status}}",
        ),
        (
            vec!["version", "--format"],
            "{{.Server.Version}} {{.Server.APIVersion}}",
        ),
        (
            vec!["info", "--format"],
            "{{.ServerVersion}} {{.NCPU}} {{.Driver}} {{.OSType}} {{.MemTotal}}",
        ),
        (
            vec!["info", "--format"],
            "{{.DefaultRuntime}} {{.DockerRootDir}} {{json .SecurityOptions}}",
        ),
        (
            vec!["version", "--format"],
            "{{.Server.Os}}/{{.Server.Arch}} {{.Server.KernelVersion}}",
        ),
    ];
    let mut differ = Vec::new();
    for (verb, template) in &cases {
        let mut args = verb.clone();
        args.push(template);
        let ours = rig.admin.run(&args);
        let mut theirs = docker(&args);
        assert_eq!(theirs.code(), 0, "docker {args:?}: {}", theirs.dump());
        assert!(!theirs.stdout.is_empty(), "docker {args:?} printed nothing");
        if on_podman() && verb[0] == "images" {
            theirs.stdout = dockers_names(&theirs.out(), template.starts_with("table")).into();
        }
        if (ours.code(), &ours.stdout) != (0, &theirs.stdout) {
            differ.push(format!(
                "{args:?}\n  docker:   {:?}\n  dockwire: {:?} {}",
                theirs.out(),
                ours.out(),
                ours.err()
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} differ:\n{}",
        differ.len(),
        cases.len(),
        differ.join("\n")
    );
    drop(made);
}

/// The docker CLI's `images` text against Podman with the names dockwire
/// gives (docker/README.md, Engines): Podman's `localhost/NAME` is
/// Docker's `NAME`. In a table, the column keeps its width.
fn dockers_names(text: &str, table: bool) -> String {
    const PODMAN: &str = "localhost/";
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let Some(at) = line.find(PODMAN) else {
            out.push_str(line);
            continue;
        };
        let mut line = format!("{}{}", &line[..at], &line[at + PODMAN.len()..]);
        if table {
            let end = line[at..].find("  ").map_or(line.len(), |i| at + i);
            line.insert_str(end, &" ".repeat(PODMAN.len()));
        }
        out.push_str(&line);
    }
    out
}
