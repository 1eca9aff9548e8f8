//! `dockwire context`: named hosts as docker's contexts, end to end
//! against a `dockwire serve` process: made, listed, used, chosen by
//! `--context`, DOCKWIRE_CONTEXT, DOCKWIRE_HOST and the current context in
//! docker's order, their pinned fingerprints insisted on, removed.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// `dockwire --state-dir STATE ARGS…` with no host, and `env` set.
fn bare(state: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Ran {
    let mut command = dockwire();
    command.arg("--state-dir").arg(state).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    run_with(&mut command, None, std::time::Duration::from_secs(60))
}

#[test]
fn contexts_choose_the_host_as_docker_contexts_do() {
    let rig = Rig::new("contexts");
    let state = rig.admin.state.clone();
    let host = format!("quic://127.0.0.1:{}", rig.server.port);
    let ls = bare(&state, &[], &["context", "ls"]).ok();
    assert_eq!(
        ls.out(),
        "NAME        DESCRIPTION                                HOST\n\
         default *   This machine's engine, served in-process   (in-process)\n"
    );

    // One with the server's fingerprint, one with another's.
    let fp = rig.server.fingerprint.clone();
    let made = bare(
        &state,
        &[],
        &[
            "context",
            "create",
            "srv",
            "--host",
            &host,
            "--server-fingerprint",
            &fp,
            "--description",
            "the rig",
        ],
    )
    .ok();
    assert_eq!(
        (made.out(), made.err()),
        (
            "srv\n".into(),
            "Successfully created context \"srv\"\n".into()
        )
    );
    let liar = fingerprint_of(&rig.scratch.join("someone"));
    bare(
        &state,
        &[],
        &[
            "context",
            "create",
            "liar",
            "--host",
            &host,
            "--server-fingerprint",
            &liar,
        ],
    )
    .ok();
    let again = bare(&state, &[], &["context", "create", "srv", "--host", &host]);
    assert!(
        again
            .failed(None)
            .contains("context \"srv\" already exists")
    );

    // --context picks it; its pinned fingerprint is insisted on.
    let ran = bare(
        &state,
        &[],
        &["--context", "srv", "run", "--rm", IMAGE, "echo", "via srv"],
    )
    .ok();
    assert_eq!(ran.out(), "via srv\n");
    let refused = bare(&state, &[], &["--context", "liar", "ps"]);
    assert!(
        refused
            .failed(Some("IDENTITY_CHANGED"))
            .contains("NOT THE ONE PINNED")
    );

    // The current context, then what overrides it, in docker's order.
    let used = bare(&state, &[], &["context", "use", "liar"]).ok();
    assert_eq!(
        (used.out(), used.err()),
        ("liar\n".into(), "Current context is now \"liar\"\n".into())
    );
    assert_eq!(bare(&state, &[], &["context", "show"]).ok().out(), "liar\n");
    bare(&state, &[], &["ps"]).failed(Some("IDENTITY_CHANGED"));
    bare(&state, &[("DOCKWIRE_CONTEXT", "srv")], &["ps"]).ok();
    bare(
        &state,
        &[("DOCKWIRE_HOST", &host), ("DOCKWIRE_CONTEXT", "liar")],
        &["ps"],
    )
    .ok();
    bare(
        &state,
        &[("DOCKWIRE_HOST", &host)],
        &["--context", "liar", "ps"],
    )
    .failed(Some("IDENTITY_CHANGED"));
    let both = bare(&state, &[], &["--context", "srv", "--host", &host, "ps"]);
    assert!(
        both.failed(None)
            .contains("either specify --host or --context, not both")
    );
    let several = bare(&state, &[], &["--context", "srv,liar", "exec", "x", "true"]);
    assert!(several.failed(None).contains("this verb acts on one host"));
    let missing = bare(&state, &[], &["--context", "nowhere", "ps"]);
    assert!(
        missing
            .failed(None)
            .contains("context \"nowhere\" does not exist")
    );

    // ls marks the current one; inspect shows what is kept.
    let ls = bare(&state, &[], &["context", "ls", "-q"]).ok();
    assert_eq!(ls.out(), "default\nliar\nsrv\n");
    let ls = bare(&state, &[], &["context", "ls"]).ok().out();
    assert!(ls.lines().any(|l| l.starts_with("liar *")), "{ls}");
    let inspected = bare(&state, &[], &["context", "inspect", "srv"]).ok();
    let seen: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(seen[0]["Name"], "srv");
    assert_eq!(seen[0]["Host"], host);
    assert_eq!(seen[0]["ServerFingerprint"], fp);
    assert_eq!(seen[0]["Description"], "the rig");

    // update mends the liar; rm of the current one needs -f.
    bare(
        &state,
        &[],
        &["context", "update", "liar", "--server-fingerprint", &fp],
    )
    .ok();
    bare(&state, &[], &["ps"]).ok();
    let in_use = bare(&state, &[], &["context", "rm", "liar"]);
    assert!(in_use.failed(None).contains("context \"liar\" is in use"));
    assert_eq!(
        bare(&state, &[], &["context", "rm", "-f", "liar"])
            .ok()
            .out(),
        "liar\n"
    );
    assert_eq!(
        bare(&state, &[], &["context", "show"]).ok().out(),
        "default\n"
    );
    let default = bare(&state, &[], &["context", "rm", "default"]);
    assert!(default.failed(None).contains("cannot be removed"));
}
