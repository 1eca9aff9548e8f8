//! `dockwire port-forward CONTAINER [LOCAL:]REMOTE …`, as kubectl's: it
//! listens on local ports (`--address`, `localhost` by default: 127.0.0.1
//! and ::1), and each accepted connection is one `container/port-forward`
//! call on the same connection to the server, any number at once, carried
//! both ways with half-closes. It prints kubectl's lines, and ends as
//! kubectl does when the container goes away: `error: lost connection to
//! pod`, exit code 1. Interrupted (Ctrl-C), it ends with 0.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use clap::Args;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::{
    ContainerInspect, ContainerRef, ContainerWait, PortForward as Forward,
};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::out::{self, Verdict};
use crate::error::{Context, Failure};

/// How much one read of either side takes.
const BUFFER: usize = 256 * 1024;

/// Forward one or more local ports to a container
#[derive(Args, Debug)]
pub struct PortForward {
    /// Addresses to listen on (comma separated). Only accepts IP addresses
    /// or localhost as a value. When localhost is supplied, dockwire will
    /// try to bind on both 127.0.0.1 and ::1 and will fail if neither of
    /// these addresses are available to bind.
    #[arg(long, value_delimiter = ',', default_value = "localhost")]
    address: Vec<String>,
    /// The container, by name or id
    pub(crate) container: String,
    /// Ports: `[ADDR:][LOCAL_PORT:]REMOTE_PORT`; a LOCAL_PORT of 0 or
    /// empty picks a free one; ADDR (an IP, `[v6]` or localhost) listens
    /// there instead of on `--address`
    #[arg(required = true, value_name = "[ADDR:][LOCAL_PORT:]REMOTE_PORT")]
    ports: Vec<String>,
}

/// One forwarded port: where it listens locally, and the container's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ports {
    local: u16,
    remote: u16,
}

/// Where to listen, as kubectl reads `--address`: `localhost` is both
/// loopbacks and succeeds if either binds; an IP address must bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Listen {
    ip: IpAddr,
    /// `true`: a failure fails the port; `false`: only if every such
    /// address fails.
    required: bool,
}

pub async fn port_forward(docker: &DockerClient, args: PortForward) -> Verdict {
    let addresses =
        parse_addresses(&args.address).map_err(|why| Failure::local("port-forward", why))?;
    let ports = args
        .ports
        .iter()
        .map(|p| parse_spec(p, &addresses))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|why| Failure::local("port-forward", why))?;
    let container = args.container;
    let inspected = docker
        .query(&ContainerInspect(ContainerRef::new(&container)))
        .await
        .context(|| format!("port-forward {container}"))?;
    let state = inspected.state.unwrap_or_default();
    if state.running != Some(true) {
        let status = state.status.map(|s| s.to_string()).unwrap_or_default();
        out::stderr(
            format!(
                "error: unable to forward port because pod is not running. Current status={status}\n"
            )
            .as_bytes(),
        )?;
        return Ok(1);
    }

    let mut listening = false;
    let mut listeners = Vec::new();
    for (addresses, mut port) in ports {
        match listen(&addresses, &mut port).await {
            Ok(bound) => {
                listening = true;
                listeners.extend(bound.into_iter().map(|l| (l, port)));
            }
            Err(e) => {
                out::stderr(format!("Unable to listen on port {}: {e}\n", port.local).as_bytes())?
            }
        }
    }
    if !listening {
        return Err(Failure::local(
            "port-forward",
            format!(
                "unable to listen on any of the requested ports: {:?}",
                args.ports
            ),
        )
        .into());
    }
    for (listener, ports) in listeners {
        tokio::spawn(accept(listener, ports, docker.clone(), container.clone()));
    }

    let wait = ContainerWait(ContainerRef::new(&container));
    let gone = docker.query(&wait);
    tokio::select! {
        _ = gone => {
            out::stderr(b"error: lost connection to pod\n")?;
            Ok(1)
        }
        _ = tokio::signal::ctrl_c() => Ok(0),
    }
}

/// `[ADDR:][LOCAL:]REMOTE`: the addresses to listen on (`ADDR`, an IP
/// address, `[v6]` or `localhost`; `--address`'s when absent) and the
/// ports.
fn parse_spec(spec: &str, addresses: &[Listen]) -> Result<(Vec<Listen>, Ports), String> {
    let fields: Vec<&str> = spec.rsplitn(3, ':').collect();
    let [remote, local, address] = fields[..] else {
        return Ok((addresses.to_vec(), parse_ports(spec)?));
    };
    let address = address.trim_start_matches('[').trim_end_matches(']');
    let own = parse_addresses(&[address.to_owned()])?;
    Ok((own, parse_ports(&format!("{local}:{remote}"))?))
}

/// `[LOCAL:]REMOTE`, as kubectl parses it: `REMOTE` alone listens on the
/// same port; `:REMOTE` and `0:REMOTE` on a free one.
fn parse_ports(spec: &str) -> Result<Ports, String> {
    let (local, remote) = match spec.split_once(':') {
        Some((local, remote)) => (local, remote),
        None => (spec, spec),
    };
    let remote: u16 = remote
        .parse()
        .map_err(|e| format!("Error parsing remote port '{remote}': {e}"))?;
    if remote == 0 {
        return Err(format!("remote port must be > 0: '{spec}'"));
    }
    let local = match local {
        "" => 0,
        local => local
            .parse()
            .map_err(|e| format!("Error parsing local port '{local}': {e}"))?,
    };
    Ok(Ports { local, remote })
}

fn parse_addresses(addresses: &[String]) -> Result<Vec<Listen>, String> {
    let mut parsed = Vec::new();
    for address in addresses {
        if address == "localhost" {
            for ip in [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ] {
                parsed.push(Listen {
                    ip,
                    required: false,
                });
            }
            continue;
        }
        let ip: IpAddr = address
            .parse()
            .map_err(|_| format!("{address} is not a valid IP"))?;
        parsed.push(Listen { ip, required: true });
    }
    parsed.sort_by_key(|l| l.ip.to_string());
    parsed.dedup_by_key(|l| l.ip);
    Ok(parsed)
}

/// Listens on each of `addresses` for `port`; a local port of 0 is set to
/// the one the first listener got, which the others then take too.
async fn listen(addresses: &[Listen], port: &mut Ports) -> io::Result<Vec<TcpListener>> {
    let mut bound = Vec::new();
    let mut errors = Vec::new();
    let (mut optional_ok, mut optional_failed) = (0, 0);
    for address in addresses {
        match TcpListener::bind(SocketAddr::new(address.ip, port.local)).await {
            Ok(listener) => {
                let local = listener.local_addr()?;
                port.local = local.port();
                out::stdout(format!("Forwarding from {local} -> {}\n", port.remote).as_bytes())
                    .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
                optional_ok += usize::from(!address.required);
                bound.push(listener);
            }
            Err(e) if address.required => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "unable to create listener: Error listen tcp {}: {e}",
                        address.ip
                    ),
                ));
            }
            Err(e) => {
                optional_failed += 1;
                errors.push(format!(
                    "unable to create listener: Error listen tcp {}: {e}",
                    address.ip
                ));
            }
        }
    }
    if optional_ok == 0 && optional_failed > 0 {
        return Err(io::Error::other(format!(
            "Listeners failed to create with the following errors: {errors:?}"
        )));
    }
    Ok(bound)
}

/// Accepts connections for good, each forwarded on a task of its own.
async fn accept(listener: TcpListener, ports: Ports, docker: DockerClient, container: String) {
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(e) => {
                // Out of descriptors, say: kubectl stops accepting on this
                // port; a pause and another try serve the next client.
                let _ = out::stderr(
                    format!("error accepting connection on port {}: {e}\n", ports.local).as_bytes(),
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        let _ = out::stdout(format!("Handling connection for {}\n", ports.local).as_bytes());
        tokio::spawn(forward(conn, ports, docker.clone(), container.clone()));
    }
}

/// Carries one local connection to the container's port and back: each
/// side's end of file is a half-close of the other.
async fn forward(conn: TcpStream, ports: Ports, docker: DockerClient, container: String) {
    let input = Forward {
        container,
        port: ports.remote,
    };
    let stream = match docker.port_forward(&input).await {
        Ok(stream) => stream,
        Err(e) => {
            let why = match e {
                dockwire_service::ClientError::Remote(e) => e.message,
                other => other.to_string(),
            };
            let _ = out::stderr(
                format!(
                    "an error occurred forwarding {} -> {}: {why}\n",
                    ports.local, ports.remote
                )
                .as_bytes(),
            );
            return;
        }
    };
    let (local_in, mut local_out) = conn.into_split();
    let (mut remote_in, mut remote_out) = tokio::io::split(stream.compat());
    let outward = async {
        let mut local_in = BufReader::with_capacity(BUFFER, local_in);
        let _ = tokio::io::copy_buf(&mut local_in, &mut remote_out).await;
        // The local end of file: the port's write side is shut.
        let _ = remote_out.shutdown().await;
    };
    let inward = async {
        let mut from_port = BufReader::with_capacity(BUFFER, &mut remote_in);
        let _ = tokio::io::copy_buf(&mut from_port, &mut local_out).await;
        let _ = local_out.shutdown().await;
    };
    tokio::join!(outward, inward);
    let mut stream = remote_in.unsplit(remote_out).into_inner();
    if let Err(e) = stream.finished().await {
        let _ = out::stderr(
            format!(
                "an error occurred forwarding {} -> {}: {e}\n",
                ports.local, ports.remote
            )
            .as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(local: u16, remote: u16) -> Ports {
        Ports { local, remote }
    }

    #[test]
    fn ports_parse_as_kubectl_parses_them() {
        assert_eq!(parse_ports("8080"), Ok(ports(8080, 8080)));
        assert_eq!(parse_ports("9000:80"), Ok(ports(9000, 80)));
        assert_eq!(parse_ports(":80"), Ok(ports(0, 80)));
        assert_eq!(parse_ports("0:80"), Ok(ports(0, 80)));
        assert!(parse_ports("x:80").unwrap_err().contains("local port 'x'"));
        assert!(parse_ports("80:0").unwrap_err().contains("must be > 0"));
        assert!(parse_ports("70000").unwrap_err().contains("remote port"));
    }

    #[test]
    fn an_address_before_the_ports_replaces_the_default_ones() {
        let default = parse_addresses(&["localhost".to_owned()]).unwrap();
        assert_eq!(default.len(), 2);
        let (addresses, p) = parse_spec("9000:80", &default).unwrap();
        assert_eq!((addresses, p), (default.clone(), ports(9000, 80)));
        let (addresses, p) = parse_spec("0.0.0.0:9000:80", &default).unwrap();
        assert_eq!(p, ports(9000, 80));
        assert_eq!(addresses.len(), 1);
        assert_eq!(addresses[0].ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(addresses[0].required);
        let (addresses, _) = parse_spec("[::1]::80", &default).unwrap();
        assert_eq!(addresses[0].ip, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert!(parse_spec("nohost:1:2", &default).is_err());
    }
}
