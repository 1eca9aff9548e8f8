//! `dockwire port-forward` end to end: a `dockwire serve` process, the
//! real engine, and a real local TCP client through the forward, with
//! kubectl's lines, exit code and message.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::*;

/// An HTTP/1.0 GET of `/index.html` through local `address`: the answer
/// (empty when the forward refused, while the server is starting).
fn get(address: &str) -> String {
    let mut conn = TcpStream::connect(address).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The local port of `Forwarding from IP:PORT -> REMOTE` lines in `out`
/// for `ip` (`127.0.0.1` or `[::1]`).
fn forwarded_from(out: &str, ip: &str) -> Option<u16> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("Forwarding from {ip}:")))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|port| port.parse().ok())
}

#[test]
fn port_forward_carries_local_clients_to_the_container_and_ends_when_it_stops() {
    let rig = Rig::new("port-forward");
    let name = rig.containers.name("pf-httpd");
    rig.admin
        .run(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "mkdir -p /www && printf forwarded > /www/index.html && exec httpd -f -p 8080 -h /www",
        ])
        .ok();

    // `:8080` picks a free local port, on both loopbacks.
    let forward = start(
        &mut rig.admin.command(&["port-forward", &name, ":8080"]),
        None,
    );
    forward.wait_for_stdout(" -> 8080\n", LIMIT);
    let printed = forward.stdout_so_far();
    let port = forwarded_from(&printed, "127.0.0.1").expect(&printed);
    assert_ne!(port, 8080);
    let mut answer = String::new();
    eventually("httpd answers through the forward", LIMIT, || {
        answer = get(&format!("127.0.0.1:{port}"));
        match answer.is_empty() {
            true => Err("an empty answer".into()),
            false => Ok(()),
        }
    });
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
    assert!(answer.ends_with("\r\n\r\nforwarded"), "{answer:?}");
    forward.wait_for_stdout(&format!("Handling connection for {port}\n"), LIMIT);
    // ::1 too, on the same port, where this host has it.
    if let Some(v6) = forwarded_from(&printed, "[::1]") {
        assert_eq!(v6, port);
        assert!(get(&format!("[::1]:{port}")).ends_with("forwarded"));
    }

    // Several at once, each exact.
    let clients: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || get(&format!("127.0.0.1:{port}"))))
        .collect();
    for client in clients {
        assert!(client.join().unwrap().ends_with("\r\n\r\nforwarded"));
    }

    // The container stops: kubectl's message, and its exit code.
    rig.admin.run(&["kill", &name]).ok();
    let ran = forward.finish(LIMIT);
    assert_eq!(ran.code(), 1, "{}", ran.dump());
    assert!(
        ran.err().contains("error: lost connection to pod\n"),
        "{}",
        ran.dump()
    );
}

#[test]
fn port_forward_refuses_a_stopped_container_and_bad_ports_as_kubectl_does() {
    let rig = Rig::new("port-forward-refusals");
    let name = rig.containers.name("pf-stopped");
    rig.admin
        .run(&["run", "--network", "none", "--name", &name, IMAGE, "true"])
        .ok();
    let ran = rig.admin.run(&["port-forward", &name, "8080"]);
    assert_eq!(ran.code(), 1, "{}", ran.dump());
    assert!(
        ran.err().contains(
            "error: unable to forward port because pod is not running. Current status=exited"
        ),
        "{}",
        ran.dump()
    );
    let ran = rig.admin.run(&["port-forward", &name, "x:8080"]);
    assert_eq!(ran.code(), 1, "{}", ran.dump());
    assert!(
        ran.err().contains("Error parsing local port 'x'"),
        "{}",
        ran.dump()
    );
    let ran = rig
        .admin
        .run(&["port-forward", "dockwire-no-such-container", "8080"]);
    assert_eq!(ran.code(), 1, "{}", ran.dump());
    assert!(ran.err().contains("No such container"), "{}", ran.dump());
}

/// A server that does not see the containers' processes (in a pid
/// namespace of its own, as one in a container with the engine's socket
/// mounted, or with a remote engine) cannot enter a container's network
/// namespace: each connection is refused, saying why, and nothing else is
/// dialled in its place.
#[test]
fn port_forward_through_a_server_in_its_own_pid_namespace_is_refused_saying_why() {
    let rig = Rig::started("port-forward-own-pid-ns", |state| {
        Server::start_in_own_pid_namespace(state, "127.0.0.1:0", &[])
    });
    let name = rig.containers.docker_sleeper("pf-own-pid-ns");
    let forward = start(
        &mut rig.admin.command(&["port-forward", &name, ":8080"]),
        None,
    );
    forward.wait_for_stdout(" -> 8080\n", LIMIT);
    let printed = forward.stdout_so_far();
    let port = forwarded_from(&printed, "127.0.0.1").expect(&printed);
    assert_eq!(get(&format!("127.0.0.1:{port}")), "");
    // The refusal is per connection: the verb listens on until the
    // container stops.
    docker(&["kill", &name]).ok();
    let ran = forward.finish(LIMIT);
    assert_eq!(ran.code(), 1, "{}", ran.dump());
    let refusal = format!(
        "an error occurred forwarding {port} -> 8080: this server does not see the \
         container's processes"
    );
    assert!(ran.err().contains(&refusal), "{}", ran.dump());
    assert!(
        ran.err().contains("pid namespace of its own"),
        "{}",
        ran.dump()
    );
}
