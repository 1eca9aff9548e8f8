//! `network ls|create|rm|connect|disconnect`.

use std::collections::HashMap;

use clap::{Args, Subcommand};
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::{
    CONFLICT, NetworkConnect, NetworkCreate, NetworkDisconnect, NetworkList, NetworkMember,
    NetworkRemove,
};

use super::containers::{labels_text, with_host};
use super::format;
use super::listing::Listing;
use super::out::{self, Stop, Verdict};
use super::template::Formatter;
use super::times::go_time_of;
use crate::error::{Context, Failure};

/// Manage networks
#[derive(Subcommand, Debug)]
pub enum Network {
    /// List networks
    #[command(visible_alias = "list")]
    Ls(Ls),
    /// Create a network
    Create(Create),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(Rm),
    /// Connect a container to a network
    Connect(Connect),
    /// Disconnect a container from a network
    Disconnect(Disconnect),
}

/// List networks
#[derive(Args, Debug)]
pub struct Ls {
    /// Provide filter values (e.g. driver=bridge, name=web, label=KEY=VALUE)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a Go template (`table …` for a table)
    #[arg(long, value_name = "TEMPLATE")]
    format: Option<String>,
}

/// Create a network
#[derive(Args, Debug)]
pub struct Create {
    /// Driver to manage the Network
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Set metadata on a network
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// The network's name
    name: String,
}

/// Remove one or more networks
#[derive(Args, Debug)]
pub struct Rm {
    /// Networks, by name or id
    #[arg(required = true, value_name = "NETWORK")]
    networks: Vec<String>,
}

/// Connect a container to a network
#[derive(Args, Debug)]
pub struct Connect {
    /// The network, by name or id
    network: String,
    /// The container, by name or id
    pub(super) container: String,
}

/// Disconnect a container from a network
#[derive(Args, Debug)]
pub struct Disconnect {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    force: bool,
    /// The network, by name or id
    network: String,
    /// The container, by name or id
    pub(super) container: String,
}

/// Whether `verb` is `ls`.
pub fn is_ls(verb: &Network) -> bool {
    matches!(verb, Network::Ls(_))
}

/// `ls`'s arguments, if `verb` is `ls`.
pub fn ls_args(verb: Network) -> Option<Ls> {
    match verb {
        Network::Ls(args) => Some(args),
        _ => None,
    }
}

pub async fn network(docker: &DockerClient, verb: Network) -> Verdict {
    match verb {
        Network::Ls(args) => ls(docker, args).await,
        Network::Create(args) => create(docker, args).await,
        Network::Rm(args) => rm(docker, args).await,
        Network::Connect(args) => {
            let input = NetworkConnect(NetworkMember {
                network: args.network.clone(),
                container: args.container.clone(),
                force: false,
            });
            docker
                .query(&input)
                .await
                .context(|| format!("connect {} to network {}", args.container, args.network))?;
            Ok(0)
        }
        Network::Disconnect(args) => {
            let input = NetworkDisconnect(NetworkMember {
                network: args.network.clone(),
                container: args.container.clone(),
                force: args.force,
            });
            docker.query(&input).await.context(|| {
                format!(
                    "disconnect {} from network {}",
                    args.container, args.network
                )
            })?;
            Ok(0)
        }
    }
}

async fn ls(docker: &DockerClient, args: Ls) -> Verdict {
    list(docker, &args, None).await?.print()
}

/// What `network ls` shows; `host`, on a fleet, is each object's `.Host`
/// for a `--format` template.
pub async fn list(docker: &DockerClient, args: &Ls, host: Option<&str>) -> Result<Listing, Stop> {
    let format = args.format.as_deref().map(Formatter::list).transpose()?;
    let input = NetworkList {
        filters: format::filters(&args.filter)?,
    };
    let mut networks = docker
        .query(&input)
        .await
        .context(|| "list networks".into())?;
    networks.sort_by(|a, b| {
        format::natural_cmp(
            a.name.as_deref().unwrap_or_default(),
            b.name.as_deref().unwrap_or_default(),
        )
    });
    let id = |id: Option<&str>| {
        let id = id.unwrap_or_default();
        if args.no_trunc {
            id
        } else {
            format::short_id(id)
        }
        .to_owned()
    };
    if args.quiet {
        return Ok(Listing::Ids(
            networks.iter().map(|n| id(n.id.as_deref())).collect(),
        ));
    }
    if let Some(format) = format {
        let items: Vec<_> = networks
            .iter()
            .map(|n| {
                let context = serde_json::json!({
                    "ID": id(n.id.as_deref()),
                    "Name": n.name.clone().unwrap_or_default(),
                    "Driver": n.driver.clone().unwrap_or_default(),
                    "Scope": n.scope.clone().unwrap_or_default(),
                    "IPv6": n.enable_ipv6.unwrap_or(false).to_string(),
                    "Internal": n.internal.unwrap_or(false).to_string(),
                    "Labels": labels_text(n.labels.as_ref()),
                    "CreatedAt": n.created.as_deref().map(go_time_of).unwrap_or_default(),
                });
                with_host(context, host)
            })
            .collect();
        let titles = serde_json::json!({
            "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
            "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
        });
        return Ok(format.listing(&items, &with_host(titles, host))?);
    }
    let mut table = Listing::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
    for n in &networks {
        table.push([
            id(n.id.as_deref()),
            n.name.clone().unwrap_or_default(),
            n.driver.clone().unwrap_or_default(),
            n.scope.clone().unwrap_or_default(),
        ]);
    }
    Ok(table)
}

async fn create(docker: &DockerClient, args: Create) -> Verdict {
    let what = || format!("create network {}", args.name);
    // Engines before API 1.44 create a second network of the same name
    // unless asked to check, which the catalog cannot ask: check here, as
    // docker's own client has the engine do.
    let same_name = NetworkList {
        filters: HashMap::from([("name".to_owned(), vec![args.name.clone()])]),
    };
    let existing = docker.query(&same_name).await.context(what)?;
    if existing
        .iter()
        .any(|n| n.name.as_deref() == Some(args.name.as_str()))
    {
        let why = format!("network with name {} already exists", args.name);
        return Err(Failure::local(what(), why)
            .with_code(CONFLICT.as_str())
            .into());
    }
    let input = NetworkCreate {
        name: args.name.clone(),
        driver: Some(args.driver),
        internal: args.internal,
        labels: format::labels(&args.label)?,
        ..NetworkCreate::default()
    };
    let created = docker.query(&input).await.context(what)?;
    out::line(created.id)?;
    Ok(0)
}

async fn rm(docker: &DockerClient, args: Rm) -> Verdict {
    let mut failed = false;
    for network in &args.networks {
        let input = NetworkRemove {
            network: network.clone(),
        };
        match docker
            .query(&input)
            .await
            .context(|| format!("remove network {network}"))
        {
            Ok(_) => out::line(network)?,
            Err(failure) => {
                failed = true;
                out::report(&failure);
            }
        }
    }
    Ok(i32::from(failed))
}
