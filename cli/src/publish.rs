//! `-p/--publish` as docker writes it, made into the container spec's
//! published ports: `[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`, IPv6
//! addresses in brackets, and port ranges of equal length
//! (`8000-8001:80-81`). Whether the caller may publish is the server's to
//! say.

use dockwire_docker::catalog::Publish;

use crate::error::Failure;

/// The ports one `-p` value publishes.
pub fn parse(text: &str) -> Result<Vec<Publish>, Failure> {
    let bad = |why: &str| Failure::local(format!("-p {text}"), why);
    let (rest, protocol) = match text.rsplit_once('/') {
        Some((rest, proto)) => (rest, Some(proto.to_owned())),
        None => (text, None),
    };
    // The address: bracketed IPv6, or everything before the second-last
    // colon.
    let (host_ip, ports) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (ip, after) = v6
                .split_once("]:")
                .ok_or_else(|| bad("an IPv6 address in brackets is followed by :PORTS"))?;
            (Some(ip.to_owned()), after)
        }
        None => match rest.matches(':').count() {
            0 | 1 => (None, rest),
            2 => {
                let (ip, after) = rest.split_once(':').unwrap_or_default();
                (Some(ip.to_owned()).filter(|ip| !ip.is_empty()), after)
            }
            _ => return Err(bad("IPv6 addresses are written in brackets: [::1]:80:80")),
        },
    };
    let (host, container) = match ports.rsplit_once(':') {
        Some((host, container)) => (Some(host).filter(|h| !h.is_empty()), container),
        None => (None, ports),
    };
    let container = range(container).ok_or_else(|| bad("expected a container port 1-65535"))?;
    let host = match host {
        None => None,
        Some(h) => Some(range(h).ok_or_else(|| bad("expected a host port 0-65535"))?),
    };
    let count = container.1 - container.0;
    if host.is_some_and(|h| h.1 - h.0 != count) {
        return Err(bad(
            "a host port range needs a container port range of the same length",
        ));
    }
    if container.0 == 0 {
        return Err(bad("expected a container port 1-65535"));
    }
    Ok((0..=count)
        .map(|i| Publish {
            container_port: container.0 + i,
            protocol: protocol.clone(),
            host_ip: host_ip.clone(),
            host_port: host.map(|h| h.0 + i),
        })
        .collect())
}

/// `N` or `N-M` (N ≤ M).
fn range(text: &str) -> Option<(u16, u16)> {
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first <= last).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(ip: Option<&str>, host: Option<u16>, container: u16, proto: Option<&str>) -> Publish {
        Publish {
            container_port: container,
            protocol: proto.map(str::to_owned),
            host_ip: ip.map(str::to_owned),
            host_port: host,
        }
    }

    #[test]
    fn dockers_forms_are_read_as_docker_reads_them() {
        for (text, want) in [
            ("80", vec![one(None, None, 80, None)]),
            ("8080:80", vec![one(None, Some(8080), 80, None)]),
            (
                "127.0.0.1:8080:80",
                vec![one(Some("127.0.0.1"), Some(8080), 80, None)],
            ),
            (
                "127.0.0.1::80",
                vec![one(Some("127.0.0.1"), None, 80, None)],
            ),
            ("0:80/udp", vec![one(None, Some(0), 80, Some("udp"))]),
            (
                "[::1]:8080:80/tcp",
                vec![one(Some("::1"), Some(8080), 80, Some("tcp"))],
            ),
            (
                "8000-8001:80-81",
                vec![
                    one(None, Some(8000), 80, None),
                    one(None, Some(8001), 81, None),
                ],
            ),
            (
                "80-81",
                vec![one(None, None, 80, None), one(None, None, 81, None)],
            ),
        ] {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn nonsense_is_refused_here() {
        for text in [
            "",
            "0",
            "http",
            "8080:",
            "70000",
            "81-80",
            "8000-8002:80-81",
            "::1:80:80",
            "[::1]80",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
