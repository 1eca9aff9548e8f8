//! Users' own networks. With [`UserNetwork::Isolated`] or
//! [`UserNetwork::Internal`], a `user` peer's container that names no
//! network joins the user's default network, `dw-<tag>` (see
//! [`crate::ownership`]): a bridge network of its own, made on first need,
//! sealed as the user's. Every user network ([`create_isolated_network`])
//! is a bridge whose interface is named `dw` + 12 hex digits, fenced off
//! the host by [`crate::firewall`]'s rules; Docker's own isolation chains
//! keep apart containers on different bridges (other users', the
//! default bridge's). Users may not put containers on the default
//! bridge, the host's network or another container's (unless the server
//! allows host access), nor on networks that are not theirs. With
//! [`UserNetwork::None`], users' containers get network mode `none`.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error as EngineError;
use bollard::models::{NetworkCreateRequest, NetworkInspect};
use bollard::query_parameters as q;
use dockwire_core::{CallError, ErrorCode};

use crate::access::{Caller, forbidden};
use crate::catalog::*;
use crate::config::{Config, UserNetwork};
use crate::engine::Engine;
use crate::error::{Subject, engine_error};
use crate::firewall::{self, FirewallError};
use crate::ownership::{Kind, tag};

/// The bridge driver's option naming the bridge's interface.
pub(crate) const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

/// The engine name of `owner`'s default network. No suffix, so that it
/// never equals a network a user names (`dw-<tag>-<name>`).
pub(crate) fn default_name(owner: &str) -> String {
    format!("dw-{}", tag(owner))
}

/// The network mode of a container `caller` makes from `spec`, once the
/// caller may ask for it: an admin's as asked; a user's own default
/// network when it names none (or `none`, by the server's mode).
pub(crate) fn network_mode(
    config: &Config,
    caller: &Caller,
    spec: &ContainerSpec,
) -> Result<Option<String>, CallError> {
    if caller.is_admin() {
        return Ok(spec.network.clone());
    }
    let asked = spec.network.as_deref().unwrap_or_default();
    let host = asked == "host" || asked.starts_with("container:");
    if host && caller.host_access {
        return Ok(spec.network.clone());
    }
    match asked {
        "" if config.user_network.has_networks() => Ok(Some(default_name(&caller.owner))),
        "" | "none" => Ok(Some("none".into())),
        _ if host => Err(forbidden(format!(
            "the network mode {asked:?} needs an admin"
        ))),
        "bridge" | "default" => Err(forbidden(format!(
            "a user's containers may not join {asked:?}: they join the user's own network"
        ))),
        // A name: one of the user's own networks, resolved (and its
        // bridge's rules checked) by `crate::create`.
        _ if config.user_network.has_networks() => Ok(spec.network.clone()),
        _ => Err(forbidden(format!(
            "users get no networks on this server, not {asked:?}"
        ))),
    }
}

/// Makes sure the user network `id` (one of the caller's own, as
/// [`crate::owned`] resolved it) is fenced off the host before a container
/// joins it: its rules are put back if anything removed them. A network
/// that is no user bridge is refused.
pub(crate) async fn ready_own(docker: &Docker, id: &str) -> Result<(), CallError> {
    let network = docker
        .inspect_network(id, None::<q::InspectNetworkOptions>)
        .await
        .map_err(|e| engine_error(Subject::Network, e))?;
    let shown = network
        .options
        .as_ref()
        .and_then(|o| o.get(BRIDGE_NAME_OPTION))
        .filter(|b| firewall::is_bridge_name(b))
        .cloned();
    // The caller's own network (sealed: this server made it, with the
    // bridge its name gives), whose bridge the engine (Podman) may not
    // show.
    let hidden = || {
        let name = network.name.as_deref().unwrap_or_default();
        let unshown = network
            .options
            .as_ref()
            .is_none_or(|o| !o.contains_key(BRIDGE_NAME_OPTION));
        (unshown && name.starts_with("dw-")).then(|| firewall::bridge_name(name))
    };
    match shown.or_else(hidden) {
        Some(bridge) => fence(&bridge).await,
        None => Err(forbidden(
            "a user's containers join only isolated user networks",
        )),
    }
}

/// Makes sure the network `mode` names is there, isolated and fenced off
/// the host, when it is `caller`'s default network: made on first need.
/// Call it before each create of a user's container: the rules are
/// checked (and put back if anything removed them) every time. Refuses the
/// container, rather than making it unfenced, when the rules cannot be
/// installed.
pub(crate) async fn ready(
    engine: &Engine,
    caller: &Caller,
    mode: Option<&str>,
) -> Result<(), CallError> {
    let kind = engine.config.user_network;
    if caller.is_admin() || !kind.has_networks() {
        return Ok(());
    }
    let name = default_name(&caller.owner);
    if mode != Some(name.as_str()) {
        return Ok(());
    }
    let docker = engine.docker().await?;
    // One at a time in this process: two calls of one user at once make
    // one network (and another server's concurrent make is a conflict,
    // re-read below).
    let _one_at_a_time = MAKING.lock().await;
    match docker
        .inspect_network(&name, None::<q::InspectNetworkOptions>)
        .await
    {
        Ok(network) => {
            check_isolated(
                &network,
                &name,
                kind,
                sealed(engine, caller, &network, &name),
            )?;
            fence(&firewall::bridge_name(&name)).await
        }
        Err(e) if is_missing(&e) => {
            let made =
                create_isolated_network(engine, &caller.owner, &name, false, HashMap::new()).await;
            match made {
                Ok(_) => Ok(()),
                // Made by another server in between: fine if isolated,
                // and once its rules are in (they may be what failed).
                Err(e) => match docker
                    .inspect_network(&name, None::<q::InspectNetworkOptions>)
                    .await
                {
                    Ok(network) => {
                        check_isolated(
                            &network,
                            &name,
                            kind,
                            sealed(engine, caller, &network, &name),
                        )?;
                        fence(&firewall::bridge_name(&name)).await
                    }
                    Err(_) => Err(e),
                },
            }
        }
        Err(e) => Err(engine_error(Subject::Network, e)),
    }
}

/// Makes the user network `name` (its engine name) for `owner`, with the
/// caller's `labels` (dockwire's own are dropped): a bridge named after
/// it, internal when asked or with [`UserNetwork::Internal`], sealed as `owner`'s, its
/// bridge fenced off the host before the network exists. Every network a
/// user gets is made here. Its id.
pub(crate) async fn create_isolated_network(
    engine: &Engine,
    owner: &str,
    name: &str,
    internal: bool,
    labels: HashMap<String, String>,
) -> Result<String, CallError> {
    let bridge = firewall::bridge_name(name);
    fence(&bridge).await?;
    let mut labels: HashMap<String, String> = labels
        .into_iter()
        .filter(|(k, _)| !k.starts_with(LABEL_PREFIX))
        .collect();
    labels.insert(LABEL_MANAGED.into(), "true".into());
    labels.insert(LABEL_OWNER.into(), owner.into());
    engine
        .config
        .owner_key
        .seal_labels(Kind::Network, name, &mut labels);
    let request = NetworkCreateRequest {
        name: name.into(),
        driver: Some("bridge".into()),
        internal: Some(internal || engine.config.user_network == UserNetwork::Internal),
        options: Some(HashMap::from([(BRIDGE_NAME_OPTION.into(), bridge.clone())])),
        labels: Some(labels),
        ..Default::default()
    };
    let docker = engine.docker().await?;
    match docker.create_network(request).await {
        Ok(created) => Ok(created.id),
        Err(e) => {
            unfence_if_gone(&docker, name, &bridge).await;
            Err(engine_error(Subject::Network, e))
        }
    }
}

/// Removes the rules of network `name`'s bridge once the network is gone
/// (after a `network/remove`), when it was a user network. Logged, not
/// failed: the network is gone either way.
pub(crate) async fn after_removal(docker: &Docker, network: &NetworkInspect) {
    let name = network.name.as_deref().unwrap_or_default();
    let shown = network
        .options
        .as_ref()
        .and_then(|o| o.get(BRIDGE_NAME_OPTION))
        .filter(|b| firewall::is_bridge_name(b))
        .cloned();
    // Podman makes the bridge asked for but does not show its name: a
    // user network's (`dw-…`) is the one its name gives.
    let Some(bridge) =
        shown.or_else(|| name.starts_with("dw-").then(|| firewall::bridge_name(name)))
    else {
        return;
    };
    unfence_if_gone(docker, name, &bridge).await;
}

/// Serializes the making of default networks in this process.
static MAKING: futures::lock::Mutex<()> = futures::lock::Mutex::new(());

/// Refuses a network that is not an isolated user network named `name`
/// as this server's mode makes them.
/// Whether `network` (named `name`) is sealed as `caller`'s by this
/// server: made here, with the bridge its name gives.
fn sealed(engine: &Engine, caller: &Caller, network: &NetworkInspect, name: &str) -> bool {
    let labels = network.labels.clone().unwrap_or_default();
    caller.owns(&engine.config.owner_key, Kind::Network, name, &labels)
}

/// Refuses the network `name` unless it is an isolated user network of
/// `kind`: a bridge named as its name gives, as the engine shows it or,
/// when the engine does not show it (Podman), as this server made it
/// (`sealed`).
fn check_isolated(
    network: &NetworkInspect,
    name: &str,
    kind: UserNetwork,
    sealed: bool,
) -> Result<(), CallError> {
    let bridge = network
        .options
        .as_ref()
        .and_then(|o| o.get(BRIDGE_NAME_OPTION));
    let expected = firewall::bridge_name(name);
    let bridge_ok = match bridge {
        Some(bridge) => *bridge == expected,
        None => sealed,
    };
    let isolated = network.name.as_deref() == Some(name)
        && network.driver.as_deref() == Some("bridge")
        && bridge_ok;
    if !isolated {
        return Err(CallError::new(
            CONFLICT,
            format!(
                "the network {name} exists but is not an isolated user network; an admin must remove it"
            ),
        ));
    }
    let internal = network.internal == Some(true);
    if internal != (kind == UserNetwork::Internal) {
        return Err(CallError::new(
            CONFLICT,
            format!(
                "the network {name} was made {} outbound traffic, which this server's mode ({kind:?}) does not give; an admin must remove it",
                if internal { "without" } else { "with" }
            ),
        ));
    }
    Ok(())
}

/// Installs `bridge`'s rules, off the async threads.
async fn fence(bridge: &str) -> Result<(), CallError> {
    let bridge = bridge.to_owned();
    let fenced = tokio::task::spawn_blocking(move || firewall::fence(&bridge)).await;
    match fenced {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(unfenced(&e)),
        Err(e) => Err(CallError::new(
            ErrorCode::INTERNAL,
            format!("the firewall task ended: {e}"),
        )),
    }
}

/// Removes `bridge`'s rules when network `name` does not exist (any more).
async fn unfence_if_gone(docker: &Docker, name: &str, bridge: &str) {
    match docker
        .inspect_network(name, None::<q::InspectNetworkOptions>)
        .await
    {
        Err(e) if is_missing(&e) => {}
        _ => return,
    }
    let owned = bridge.to_owned();
    match tokio::task::spawn_blocking(move || firewall::unfence(&owned)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(network = %name, "cannot remove the rules of {bridge}: {e}"),
        Err(e) => tracing::warn!(network = %name, "the firewall task ended: {e}"),
    }
}

/// What a user sees when its network cannot be fenced off the host: no
/// container, and why.
fn unfenced(e: &FirewallError) -> CallError {
    CallError::new(
        ErrorCode::UNAVAILABLE,
        format!(
            "the rules that fence users' networks off the host cannot be installed ({e}); \
             a user's container is not created without them"
        ),
    )
    .with_retryable(false)
}

fn is_missing(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;

    fn spec(network: Option<&str>) -> ContainerSpec {
        let mut spec = ContainerSpec::new("img", ["true"]);
        spec.network = network.map(str::to_owned);
        spec
    }

    #[test]
    fn a_users_container_joins_its_own_network_unless_it_asks_for_none() {
        let config = Config::from_env().with_user_network(UserNetwork::Isolated);
        let alice = Caller::test_user("alice");
        let own = network_mode(&config, &alice, &spec(None)).unwrap();
        assert_eq!(own, Some(default_name("alice")));
        assert_ne!(own, Some(default_name("bob")));
        assert_eq!(own.as_deref().map(|n| n.matches('-').count()), Some(1));
        let none = network_mode(&config, &alice, &spec(Some("none"))).unwrap();
        assert_eq!(none.as_deref(), Some("none"));
        let config = config.with_user_network(UserNetwork::None);
        let none = network_mode(&config, &alice, &spec(None)).unwrap();
        assert_eq!(none.as_deref(), Some("none"));
    }

    #[test]
    fn users_may_not_pick_the_default_bridge_the_host_or_anothers_network() {
        let config = Config::from_env().with_user_network(UserNetwork::Isolated);
        let alice = Caller::test_user("alice");
        for asked in ["bridge", "default", "host", "container:x"] {
            let e = network_mode(&config, &alice, &spec(Some(asked))).unwrap_err();
            assert_eq!(e.code, ErrorCode::FORBIDDEN, "{asked}");
        }
        // A name passes here, to be resolved among the user's own networks
        // (`crate::create`: anyone else's is not found); with no user
        // networks on this server it is refused at once.
        for asked in ["operators-net", default_name("bob").as_str()] {
            let passed = network_mode(&config, &alice, &spec(Some(asked))).unwrap();
            assert_eq!(passed.as_deref(), Some(asked));
            let none = config.clone().with_user_network(UserNetwork::None);
            let e = network_mode(&none, &alice, &spec(Some(asked))).unwrap_err();
            assert_eq!(e.code, ErrorCode::FORBIDDEN, "{asked}");
        }
        let admin = Caller {
            role: Role::Admin,
            ..Caller::test_user("root")
        };
        let asked = network_mode(&config, &admin, &spec(Some("bridge"))).unwrap();
        assert_eq!(asked.as_deref(), Some("bridge"));
        assert_eq!(network_mode(&config, &admin, &spec(None)).unwrap(), None);
    }

    #[test]
    fn only_an_isolated_bridge_of_the_servers_mode_passes_for_a_users_network() {
        let name = default_name("alice");
        let network = |driver: &str, bridge: String, internal: bool| NetworkInspect {
            name: Some(name.clone()),
            driver: Some(driver.into()),
            internal: Some(internal),
            options: Some(HashMap::from([(BRIDGE_NAME_OPTION.into(), bridge)])),
            ..Default::default()
        };
        let bridge = firewall::bridge_name(&name);
        let good = network("bridge", bridge.clone(), false);
        assert!(check_isolated(&good, &name, UserNetwork::Isolated, false).is_ok());
        let conflict =
            |n: &NetworkInspect, kind| check_isolated(n, &name, kind, false).unwrap_err().code;
        assert_eq!(conflict(&good, UserNetwork::Internal), CONFLICT);
        let internal = network("bridge", bridge.clone(), true);
        assert!(check_isolated(&internal, &name, UserNetwork::Internal, false).is_ok());
        assert_eq!(conflict(&internal, UserNetwork::Isolated), CONFLICT);
        let other_bridge = network("bridge", "docker0".into(), false);
        assert_eq!(conflict(&other_bridge, UserNetwork::Isolated), CONFLICT);
        let macvlan = network("macvlan", bridge, false);
        assert_eq!(conflict(&macvlan, UserNetwork::Isolated), CONFLICT);
        // A bridge the engine does not show (Podman): only a network this
        // server made and sealed passes.
        let unshown = NetworkInspect {
            options: Some(HashMap::new()),
            ..good
        };
        assert!(check_isolated(&unshown, &name, UserNetwork::Isolated, true).is_ok());
        assert_eq!(conflict(&unshown, UserNetwork::Isolated), CONFLICT);
    }
}
