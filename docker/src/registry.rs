//! Where `user` peers may pull from. The engine fetches what a pull names,
//! from the engine's host: a user free to name any registry could make it
//! fetch from the host's own services (`127.0.0.1:PORT`) or the private
//! network around it.
//!
//! The rule, for users (admins may pull from anywhere):
//!
//! - Docker Hub (a reference with no registry host, or `docker.io`,
//!   `index.docker.io`, `registry-1.docker.io`) is allowed;
//! - any other registry only when the operator allowed it by the same
//!   `HOST` or `HOST:PORT` (`serve --allow-registry`, compared without
//!   regard to case);
//! - an allowed registry named by its address is the operator's explicit
//!   choice and is allowed whatever the address (`127.0.0.1:5000`); one
//!   named by a host name must resolve, here and now, only to public
//!   addresses: a name that resolves to a loopback, private, link-local,
//!   unspecified or otherwise special address is refused (an operator who
//!   means such a registry allows it by its address).
//!
//! All of it is decided before the engine is asked. Refusals are
//! `FORBIDDEN`; a name that does not resolve is `IMAGE_PULL_FAILED`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dockwire_core::CallError;

use crate::access::{Caller, forbidden};
use crate::catalog::IMAGE_PULL_FAILED;
use crate::config::Config;

/// The names of Docker Hub's registry.
const DOCKER_HUB: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// Refuses a pull of `image` that `caller` may not make (see the module's
/// documentation).
pub(crate) async fn check_pull(
    config: &Config,
    caller: &Caller,
    image: &str,
) -> Result<(), CallError> {
    if caller.is_admin() {
        return Ok(());
    }
    let Some(registry) = registry_of(image) else {
        return Ok(());
    };
    if DOCKER_HUB.iter().any(|h| h.eq_ignore_ascii_case(registry)) {
        return Ok(());
    }
    let allowed = config
        .allowed_registries
        .iter()
        .any(|a| a.eq_ignore_ascii_case(registry));
    if !allowed {
        return Err(forbidden(format!(
            "pulling from the registry {registry:?} needs an admin, or the server's --allow-registry {registry}"
        )));
    }
    let (host, port) = split_host_port(registry);
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let resolved = tokio::net::lookup_host((host, port.unwrap_or(443)))
        .await
        .map_err(|_| {
            CallError::new(
                IMAGE_PULL_FAILED,
                format!("the registry {registry:?} does not resolve"),
            )
        })?;
    for addr in resolved {
        if is_special(addr.ip()) {
            return Err(forbidden(format!(
                "the registry {registry:?} resolves to a loopback, private or otherwise special \
                 address; the server allows such a registry only by its address"
            )));
        }
    }
    Ok(())
}

/// The registry host (`HOST` or `HOST:PORT`) `image` names, as Docker
/// reads a reference: its first path component when it has a `.` or a
/// `:` or is `localhost`; `None` for Docker Hub.
pub(crate) fn registry_of(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

/// `registry`'s host (without an IPv6 address's brackets) and port.
fn split_host_port(registry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = registry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match registry.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()),
        None => (registry, None),
    }
}

/// Whether `ip` is an address a user's registry may not have: anything
/// but a global unicast address.
pub(crate) fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_special_v4(v4),
            None => is_special_v6(v6),
        },
    }
}

fn is_special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240
}

fn is_special_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Site-local (deprecated), fec0::/10.
        || (first & 0xffc0) == 0xfec0
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // NAT64, 64:ff9b::/96, and IPv4-compatible ::a.b.c.d.
        || first == 0x0064
        || ip.segments()[..6].iter().all(|s| *s == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_the_first_component_when_it_looks_like_a_host() {
        assert_eq!(registry_of("busybox"), None);
        assert_eq!(registry_of("library/busybox:1"), None);
        assert_eq!(registry_of("127.0.0.1:5000/x"), Some("127.0.0.1:5000"));
        assert_eq!(registry_of("localhost/x"), Some("localhost"));
        assert_eq!(registry_of("[::1]:5000/x"), Some("[::1]:5000"));
        assert_eq!(registry_of("ghcr.io/a/b@sha256:00"), Some("ghcr.io"));
    }

    #[test]
    fn hosts_and_ports_split_with_or_without_brackets() {
        assert_eq!(split_host_port("a.b:5000"), ("a.b", Some(5000)));
        assert_eq!(split_host_port("a.b"), ("a.b", None));
        assert_eq!(split_host_port("[::1]:5000"), ("::1", Some(5000)));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
    }

    #[test]
    fn only_global_unicast_addresses_are_ordinary() {
        for special in [
            "127.0.0.1",
            "10.1.2.3",
            "172.17.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
        ] {
            assert!(is_special(special.parse().unwrap()), "{special}");
        }
        for ordinary in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_special(ordinary.parse().unwrap()), "{ordinary}");
        }
    }
}
