//! Published ports (`-p/--publish`): a container's port bound on the
//! engine's host. An admin publishes on any address and port. A `user`
//! publishes only when the operator allows it (`serve
//! --user-publish-ports FIRST-LAST`), only on 127.0.0.1 (the address it
//! gets when it names none), and only on a host port in the operator's
//! range or one the engine picks: a user's container must not be reachable
//! from other machines, nor take a loopback port a host service expects
//! to own. Each refusal is `FORBIDDEN` naming what was asked, before
//! anything is made.

use std::net::{IpAddr, Ipv4Addr};

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, PortMap};
use dockwire_core::CallError;

use crate::access::{Caller, forbidden};
use crate::catalog::Publish;
use crate::config::Config;
use crate::error::invalid_input;

/// Writes `ports` into `body`'s exposed ports and `host`'s bindings, as
/// `caller` may publish them.
pub(crate) fn apply(
    config: &Config,
    caller: &Caller,
    ports: &[Publish],
    body: &mut ContainerCreateBody,
    host: &mut HostConfig,
) -> Result<(), CallError> {
    if ports.is_empty() {
        return Ok(());
    }
    let mut bindings = PortMap::new();
    for port in ports {
        let (key, binding) = binding(config, caller, port)?;
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    let mut exposed: Vec<String> = bindings.keys().cloned().collect();
    exposed.sort();
    body.exposed_ports = Some(exposed);
    host.port_bindings = Some(bindings);
    Ok(())
}

/// `port`'s key in the engine's port map (`80/tcp`) and its binding.
fn binding(
    config: &Config,
    caller: &Caller,
    port: &Publish,
) -> Result<(String, PortBinding), CallError> {
    if port.container_port == 0 {
        return Err(invalid_input("a published port's container port is 0"));
    }
    let protocol = port.protocol.as_deref().unwrap_or("tcp");
    if !matches!(protocol, "tcp" | "udp" | "sctp") {
        return Err(invalid_input(format!(
            "a published port's protocol is tcp, udp or sctp, got {protocol:?}"
        )));
    }
    let host_ip = match port.host_ip.as_deref() {
        None | Some("") => None,
        Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| {
            invalid_input(format!(
                "a published port's host address {ip:?} is not an IP address"
            ))
        })?),
    };
    let host_port = port.host_port.filter(|&p| p != 0);
    let shown = format!(
        "{}:{}:{}/{protocol}",
        host_ip.map_or(String::new(), |ip| ip.to_string()),
        host_port.map_or(String::new(), |p| p.to_string()),
        port.container_port
    );
    let host_ip = match caller.is_admin() {
        true => host_ip,
        false => {
            let Some(range) = config.policy.user_ports else {
                return Err(forbidden(format!(
                    "publishing ports ({shown}) needs an admin: this server lets \
                     users publish none"
                )));
            };
            const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
            if host_ip.is_some_and(|ip| ip != LOOPBACK) {
                return Err(forbidden(format!(
                    "a user publishes only on 127.0.0.1, not {shown}"
                )));
            }
            if let Some(p) = host_port {
                if !(range.first..=range.last).contains(&p) {
                    return Err(forbidden(format!(
                        "host port {p} ({shown}) is outside the ports this server lets \
                         users publish ({}-{})",
                        range.first, range.last
                    )));
                }
            }
            Some(LOOPBACK)
        }
    };
    Ok((
        format!("{}/{protocol}", port.container_port),
        PortBinding {
            host_ip: host_ip.map(|ip| ip.to_string()),
            host_port: host_port.map(|p| p.to_string()),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;
    use crate::policy::HostPorts;

    fn published(
        role: Role,
        user_ports: Option<HostPorts>,
        ports: &[Publish],
    ) -> Result<(ContainerCreateBody, HostConfig), CallError> {
        let mut config = Config::from_env();
        config.policy.user_ports = user_ports;
        let caller = Caller::test_as(role);
        let (mut body, mut host) = (ContainerCreateBody::default(), HostConfig::default());
        apply(&config, &caller, ports, &mut body, &mut host)?;
        Ok((body, host))
    }

    fn port(host_ip: Option<&str>, host_port: Option<u16>, container_port: u16) -> Publish {
        Publish {
            container_port,
            protocol: None,
            host_ip: host_ip.map(str::to_owned),
            host_port,
        }
    }

    const RANGE: Option<HostPorts> = Some(HostPorts {
        first: 20000,
        last: 20099,
    });

    #[test]
    fn an_admins_ports_reach_the_engine_as_asked() {
        let ports = [
            port(None, Some(8080), 80),
            port(Some("0.0.0.0"), None, 80),
            Publish {
                protocol: Some("udp".into()),
                ..port(Some("::1"), Some(53), 53)
            },
        ];
        let (body, host) = published(Role::Admin, None, &ports).unwrap();
        assert_eq!(
            body.exposed_ports,
            Some(vec!["53/udp".to_owned(), "80/tcp".to_owned()])
        );
        let bindings = host.port_bindings.unwrap();
        assert_eq!(
            bindings["80/tcp"],
            Some(vec![
                PortBinding {
                    host_ip: None,
                    host_port: Some("8080".into())
                },
                PortBinding {
                    host_ip: Some("0.0.0.0".into()),
                    host_port: None
                },
            ])
        );
        assert_eq!(
            bindings["53/udp"],
            Some(vec![PortBinding {
                host_ip: Some("::1".into()),
                host_port: Some("53".into())
            }])
        );
    }

    #[test]
    fn a_user_publishes_only_on_loopback_in_the_operators_range() {
        let (_, host) = published(
            Role::User,
            RANGE,
            &[
                port(None, None, 80),
                port(Some("127.0.0.1"), Some(20099), 81),
            ],
        )
        .unwrap();
        let bindings = host.port_bindings.unwrap();
        let loopback = |p: Option<&str>| {
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: p.map(str::to_owned),
            }])
        };
        assert_eq!(bindings["80/tcp"], loopback(None));
        assert_eq!(bindings["81/tcp"], loopback(Some("20099")));
    }

    #[test]
    fn a_users_port_elsewhere_or_unallowed_is_forbidden_by_what_was_asked() {
        for (range, asked, says) in [
            (None, port(None, None, 80), "users publish none"),
            (
                RANGE,
                port(Some("0.0.0.0"), None, 80),
                "only on 127.0.0.1, not 0.0.0.0::80/tcp",
            ),
            (RANGE, port(Some("::1"), None, 80), "only on 127.0.0.1"),
            (RANGE, port(None, Some(19999), 80), "host port 19999"),
            (
                RANGE,
                port(Some("127.0.0.1"), Some(22), 80),
                "(20000-20099)",
            ),
        ] {
            let e = published(Role::User, range, std::slice::from_ref(&asked)).unwrap_err();
            assert_eq!(e.code, dockwire_core::ErrorCode::FORBIDDEN, "{asked:?}");
            assert!(e.message.contains(says), "{asked:?}: {}", e.message);
        }
    }

    #[test]
    fn nonsense_ports_are_invalid_input() {
        for asked in [
            port(None, None, 0),
            Publish {
                protocol: Some("icmp".into()),
                ..port(None, None, 80)
            },
            port(Some("localhost"), None, 80),
        ] {
            let e = published(Role::Admin, RANGE, std::slice::from_ref(&asked)).unwrap_err();
            assert_eq!(e.code, dockwire_core::ErrorCode::INVALID_INPUT, "{asked:?}");
        }
    }
}
