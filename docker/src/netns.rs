//! TCP connections made inside a container's own network namespace, from
//! this server: the container's process is found by the pid the engine
//! reports, its `/proc/<pid>/ns/net` opened, and a short-lived thread of
//! our own enters it (`setns(CLONE_NEWNET)`), connects, and hands the
//! connected socket back. A socket keeps the namespace it was made in, so
//! the async runtime's threads never change namespace.
//!
//! This needs the server on the engine's host, in its pid namespace, with
//! `CAP_SYS_ADMIN` (root): a remote engine's containers, or a server in a
//! pid namespace of its own, are refused with `UNAVAILABLE` naming why.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use dockwire_core::{CallError, ErrorCode};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use crate::catalog::PORT_UNREACHABLE;
use crate::signal;

/// How long a connect inside may take: on loopback it is refused or
/// accepted at once, unless a firewall in the namespace drops it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The process name gVisor's sandbox runs as on the host: the process
/// the engine reports as a gVisor container's, in the container's network
/// namespace (runsc is registered with `--network=host`).
const GVISOR_SANDBOX: &str = "runsc-sandbox";

/// A container's process as the engine reports it, checked to be visible
/// here as that container's.
pub(crate) struct ContainerProcess {
    pid: i64,
}

impl ContainerProcess {
    /// The process `pid` of a container (under gVisor when `gvisor`), if
    /// this server sees it as the engine does: a runc container's init in
    /// a pid namespace other than this server's (as exec signals decide,
    /// see `runtime::exec_signals`), or gVisor's sandbox process in this
    /// server's own pid namespace. Otherwise `UNAVAILABLE`, saying why.
    pub(crate) fn visible(pid: i64, gvisor: bool) -> Result<ContainerProcess, CallError> {
        let seen = match gvisor {
            false => signal::in_one_container(pid, pid),
            true => is_gvisor_sandbox(pid),
        };
        match seen {
            true => Ok(ContainerProcess { pid }),
            false => Err(CallError::new(
                ErrorCode::UNAVAILABLE,
                "this server does not see the container's processes (the engine is remote, or \
                 the server runs in a pid namespace of its own): port forwarding needs the \
                 server on the engine's host, in its pid namespace",
            )),
        }
    }

    /// The process's network namespace, opened: it stays that namespace
    /// whatever happens to the pid after.
    pub(crate) fn open_network(&self) -> Result<NetworkNamespace, CallError> {
        let path = format!("/proc/{}/ns/net", self.pid);
        match File::open(&path) {
            Ok(file) => Ok(NetworkNamespace { file }),
            // Exited between the engine's answer and now.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(CallError::new(
                crate::catalog::CONFLICT,
                "the container stopped while its network was being entered",
            )),
            Err(e) => Err(cannot_enter(&e)),
        }
    }
}

/// A container's network namespace, held open.
pub(crate) struct NetworkNamespace {
    file: File,
}

impl NetworkNamespace {
    /// A TCP connection to `127.0.0.1:port` made inside this namespace,
    /// by a thread of its own that enters it and then ends. Refused,
    /// unreachable or timed out: `PORT_UNREACHABLE`; not allowed to enter:
    /// `UNAVAILABLE`.
    pub(crate) async fn connect_loopback(self, port: u16) -> Result<TcpStream, CallError> {
        let (tx, rx) = futures::channel::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("dockwire-netns".into())
            .spawn(move || {
                let _ = tx.send(self.connect_here(port));
            });
        if let Err(e) = spawned {
            return Err(CallError::new(
                ErrorCode::INTERNAL,
                format!("cannot start a thread to enter the container's network: {e}"),
            ));
        }
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(CallError::new(
                ErrorCode::INTERNAL,
                "the thread entering the container's network ended without an answer",
            )),
        }
    }

    /// Runs on a thread of its own, which it moves into the namespace for
    /// good: the thread ends right after.
    fn connect_here(self, port: u16) -> Result<TcpStream, CallError> {
        move_into_link_name_space(self.file.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| cannot_enter(&io::Error::from(e)))?;
        let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
            .map_err(|e| unreachable_port(port, &e))?;
        stream
            .set_nonblocking(true)
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| unreachable_port(port, &e))?;
        Ok(stream)
    }
}

/// Whether `pid` is gVisor's sandbox process, in this server's own pid
/// namespace (where the engine's host numbers it).
fn is_gvisor_sandbox(pid: i64) -> bool {
    let namespace = |who: &str| std::fs::read_link(format!("/proc/{who}/ns/pid")).ok();
    let same_namespace = match (namespace(&pid.to_string()), namespace("self")) {
        (Some(of_pid), Some(own)) => of_pid == own,
        _ => false,
    };
    let name = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = name.split(|b| *b == 0).next().unwrap_or_default();
    same_namespace && argv0 == GVISOR_SANDBOX.as_bytes()
}

fn cannot_enter(e: &io::Error) -> CallError {
    CallError::new(
        ErrorCode::UNAVAILABLE,
        format!(
            "the server cannot enter the container's network namespace (it needs root on the \
             engine's host): {e}"
        ),
    )
}

fn unreachable_port(port: u16, e: &io::Error) -> CallError {
    let why = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused: nothing listens there".to_owned(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".to_owned(),
        _ => e.to_string(),
    };
    CallError::new(
        PORT_UNREACHABLE,
        format!("cannot connect to port {port} in the container (127.0.0.1:{port}): {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_servers_own_process_is_neither_a_containers_nor_a_gvisor_sandbox() {
        let own = i64::from(std::process::id());
        for gvisor in [false, true] {
            let refused = ContainerProcess::visible(own, gvisor)
                .err()
                .expect("refused");
            assert_eq!(refused.code, ErrorCode::UNAVAILABLE);
            assert!(
                refused.message.contains("pid namespace"),
                "{}",
                refused.message
            );
        }
    }

    #[test]
    fn a_pid_with_no_process_is_not_visible() {
        let refused = ContainerProcess::visible(i64::from(i32::MAX), false).err();
        assert_eq!(refused.map(|e| e.code), Some(ErrorCode::UNAVAILABLE));
    }

    #[test]
    fn a_refused_port_names_the_port_and_the_refusal() {
        let e = unreachable_port(8080, &io::ErrorKind::ConnectionRefused.into());
        assert_eq!(e.code, PORT_UNREACHABLE);
        assert!(e.message.contains("port 8080"), "{}", e.message);
        assert!(e.message.contains("refused"), "{}", e.message);
    }
}
