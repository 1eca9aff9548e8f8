//! `volume ls|inspect|create|rm`.

use clap::{Args, Subcommand};
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::{VolumeCreate, VolumeInspect, VolumeList, VolumeRemove};

use super::containers::{labels_text, print_inspected, with_host};
use super::format;
use super::listing::Listing;
use super::out::{self, Stop, Verdict};
use super::template::Formatter;
use crate::error::Context;

/// Manage volumes
#[derive(Subcommand, Debug)]
pub enum Volume {
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(Ls),
    /// Display detailed information on one or more volumes
    Inspect(Inspect),
    /// Create a volume
    Create(Create),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(Rm),
}

/// List volumes
#[derive(Args, Debug)]
pub struct Ls {
    /// Provide filter values (e.g. dangling=true, driver=local,
    /// label=KEY=VALUE)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a Go template (`table …` for a table)
    #[arg(long, value_name = "TEMPLATE")]
    format: Option<String>,
}

/// Create a volume
#[derive(Args, Debug)]
pub struct Create {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// The volume's name (the engine picks one when absent)
    #[arg(value_name = "VOLUME")]
    name: Option<String>,
}

/// Display detailed information on one or more volumes
#[derive(Args, Debug)]
pub struct Inspect {
    /// Format output using a Go template
    #[arg(short, long, value_name = "TEMPLATE")]
    format: Option<String>,
    /// Volumes, by name
    #[arg(required = true, value_name = "VOLUME")]
    volumes: Vec<String>,
}

/// Remove one or more volumes
#[derive(Args, Debug)]
pub struct Rm {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    force: bool,
    /// Volumes, by name
    #[arg(required = true, value_name = "VOLUME")]
    volumes: Vec<String>,
}

/// Whether `verb` is `ls`.
pub fn is_ls(verb: &Volume) -> bool {
    matches!(verb, Volume::Ls(_))
}

/// `ls`'s arguments, if `verb` is `ls`.
pub fn ls_args(verb: Volume) -> Option<Ls> {
    match verb {
        Volume::Ls(args) => Some(args),
        _ => None,
    }
}

pub async fn volume(docker: &DockerClient, verb: Volume) -> Verdict {
    match verb {
        Volume::Ls(args) => ls(docker, args).await,
        Volume::Inspect(args) => inspect(docker, args).await,
        Volume::Create(args) => create(docker, args).await,
        Volume::Rm(args) => rm(docker, args).await,
    }
}

async fn inspect(docker: &DockerClient, args: Inspect) -> Verdict {
    let format = args.format.as_deref().map(Formatter::inspect).transpose()?;
    let mut found = Vec::new();
    let mut failed = false;
    for volume in &args.volumes {
        let input = VolumeInspect {
            volume: volume.clone(),
        };
        match docker
            .query(&input)
            .await
            .context(|| format!("inspect volume {volume}"))
        {
            Ok(v) => found.push(v),
            Err(failure) => {
                failed = true;
                out::report(&failure);
            }
        }
    }
    print_inspected(&found, format.as_ref(), failed)
}

async fn ls(docker: &DockerClient, args: Ls) -> Verdict {
    list(docker, &args, None).await?.print()
}

/// What `volume ls` shows; `host`, on a fleet, is each object's `.Host`
/// for a `--format` template.
pub async fn list(docker: &DockerClient, args: &Ls, host: Option<&str>) -> Result<Listing, Stop> {
    let format = args.format.as_deref().map(Formatter::list).transpose()?;
    let input = VolumeList {
        filters: format::filters(&args.filter)?,
    };
    let listed = docker
        .query(&input)
        .await
        .context(|| "list volumes".into())?;
    for warning in listed.warnings.unwrap_or_default() {
        out::stderr(format!("WARNING: {warning}\n").as_bytes())?;
    }
    let mut volumes = listed.volumes.unwrap_or_default();
    volumes.sort_by(|a, b| format::natural_cmp(&a.name, &b.name));
    if args.quiet {
        return Ok(Listing::Ids(volumes.into_iter().map(|v| v.name).collect()));
    }
    if let Some(format) = format {
        let items: Vec<_> = volumes
            .iter()
            .map(|v| {
                let context = serde_json::json!({
                    "Name": v.name,
                    "Driver": v.driver,
                    "Scope": v.scope.map(|s| s.to_string()).unwrap_or_default(),
                    "Mountpoint": v.mountpoint,
                    "Labels": labels_text(Some(&v.labels)),
                    "Links": "N/A",
                    "Size": "N/A",
                });
                with_host(context, host)
            })
            .collect();
        let titles = serde_json::json!({
            "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
            "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
        });
        return Ok(format.listing(&items, &with_host(titles, host))?);
    }
    let mut table = Listing::table(&["DRIVER", "VOLUME NAME"]);
    for v in &volumes {
        table.push([v.driver.as_str(), v.name.as_str()]);
    }
    Ok(table)
}

async fn create(docker: &DockerClient, args: Create) -> Verdict {
    let input = VolumeCreate {
        name: args.name.clone(),
        driver: Some(args.driver),
        labels: format::labels(&args.label)?,
        ..VolumeCreate::default()
    };
    let created = docker.query(&input).await.context(|| match &args.name {
        Some(name) => format!("create volume {name}"),
        None => "create a volume".into(),
    })?;
    out::line(created.name)?;
    Ok(0)
}

async fn rm(docker: &DockerClient, args: Rm) -> Verdict {
    let mut failed = false;
    for volume in &args.volumes {
        let input = VolumeRemove {
            volume: volume.clone(),
            force: args.force,
        };
        match docker
            .query(&input)
            .await
            .context(|| format!("remove volume {volume}"))
        {
            Ok(_) => out::line(volume)?,
            Err(failure) => {
                failed = true;
                out::report(&failure);
            }
        }
    }
    Ok(i32::from(failed))
}
