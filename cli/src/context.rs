//! `dockwire context`: named hosts, as docker's contexts (see
//! [`crate::contexts`]): `create`, `ls`, `inspect`, `use`, `update`, `rm`
//! and `show`.

use std::str::FromStr;

use clap::Subcommand;
use dockwire_service::quic::Fingerprint;

use crate::Global;
use crate::contexts::{Context, DEFAULT};
use crate::error::{Failure, Outcome};
use crate::state::StateDir;
use crate::verbs::format::{Table, go_json};

/// `dockwire context …`.
#[derive(Subcommand, Debug)]
pub enum ContextCommand {
    /// Create a context
    Create {
        /// Its name
        name: String,
        /// The server: quic://HOST[:PORT] or unix://PATH
        #[arg(long)]
        host: String,
        /// The server's fingerprint to insist on (otherwise the first seen
        /// is remembered)
        #[arg(long)]
        server_fingerprint: Option<String>,
        /// What it is
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List contexts
    #[command(alias = "list")]
    Ls {
        /// Only show context names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more contexts
    Inspect {
        /// The contexts (the current one when none is given)
        names: Vec<String>,
    },
    /// Set the current context
    Use {
        /// Its name (`default`: this machine's engine, in-process)
        name: String,
    },
    /// Update a context
    Update {
        /// Its name
        name: String,
        /// The server: quic://HOST[:PORT] or unix://PATH
        #[arg(long)]
        host: Option<String>,
        /// The server's fingerprint to insist on (empty: none)
        #[arg(long)]
        server_fingerprint: Option<String>,
        /// What it is
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove one or more contexts
    #[command(alias = "remove")]
    Rm {
        /// Remove the current context too (`default` becomes current)
        #[arg(short, long)]
        force: bool,
        /// The contexts
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Print the name of the current context
    Show,
}

/// Runs a `context` command.
pub fn run(global: &Global, command: ContextCommand) -> Outcome {
    let state = StateDir::open(global.state_dir.as_deref())?;
    let contexts = state.contexts();
    match command {
        ContextCommand::Create {
            name,
            host,
            server_fingerprint,
            description,
        } => {
            let context = Context {
                name: name.clone(),
                description,
                host: checked_host(&name, host)?,
                server_fingerprint: checked_fingerprint(&name, server_fingerprint)?,
            };
            contexts.save(&context, true)?;
            println!("{name}");
            eprintln!("Successfully created context \"{name}\"");
        }
        ContextCommand::Ls { quiet } => {
            let current = contexts.current()?;
            let all = contexts.list()?;
            if quiet {
                for context in &all {
                    println!("{}", context.name);
                }
                return Ok(0);
            }
            let mut table = Table::list(&["NAME", "DESCRIPTION", "HOST"]);
            for context in &all {
                let marked = match context.name == current {
                    true => format!("{} *", context.name),
                    false => context.name.clone(),
                };
                let host = match context.host.as_str() {
                    "" => "(in-process)".to_owned(),
                    host => host.to_owned(),
                };
                table.row([marked, context.description.clone(), host]);
            }
            print!("{}", table.render());
        }
        ContextCommand::Inspect { names } => {
            let names = match names.is_empty() {
                true => vec![contexts.current()?],
                false => names,
            };
            let found = names
                .iter()
                .map(|name| contexts.must_get(name))
                .collect::<Result<Vec<_>, _>>()?;
            let json = go_json(&found).map_err(|e| Failure::local("context inspect", e))?;
            println!("{json}");
        }
        ContextCommand::Use { name } => {
            contexts.set_current(&name)?;
            println!("{name}");
            eprintln!("Current context is now \"{name}\"");
        }
        ContextCommand::Update {
            name,
            host,
            server_fingerprint,
            description,
        } => {
            let mut context = contexts.must_get(&name)?;
            if let Some(host) = host {
                context.host = checked_host(&name, host)?;
            }
            if let Some(fingerprint) = server_fingerprint {
                let given = Some(fingerprint).filter(|f| !f.is_empty());
                context.server_fingerprint = checked_fingerprint(&name, given)?;
            }
            if let Some(description) = description {
                context.description = description;
            }
            contexts.save(&context, false)?;
            println!("{name}");
            eprintln!("Successfully updated context \"{name}\"");
        }
        ContextCommand::Rm { force, names } => {
            for name in names {
                contexts.remove(&name, force)?;
                println!("{name}");
            }
        }
        ContextCommand::Show => println!("{}", contexts.current()?),
    }
    Ok(0)
}

/// A context's host: `quic://…` or `unix://…`.
fn checked_host(name: &str, host: String) -> Result<String, Failure> {
    let scheme = host.starts_with("quic://") || host.starts_with("unix://");
    match scheme && host.len() > "quic://".len() && name != DEFAULT {
        true => Ok(host),
        false => Err(Failure::local(
            format!("context {name}"),
            format!("a host is quic://HOST[:PORT] or unix://PATH, not {host:?}"),
        )),
    }
}

/// A fingerprint as `dockwire serve` prints it.
fn checked_fingerprint(name: &str, given: Option<String>) -> Result<Option<String>, Failure> {
    let Some(given) = given else {
        return Ok(None);
    };
    let fingerprint = Fingerprint::from_str(&given)
        .map_err(|e| Failure::local(format!("context {name}: --server-fingerprint"), e))?;
    Ok(Some(fingerprint.to_string()))
}
