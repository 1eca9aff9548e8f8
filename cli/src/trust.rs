//! `dockwire trust`: the clients a server admits over QUIC, with their
//! names and roles (the authorized-peers file of the state directory).

use std::str::FromStr;

use clap::Subcommand;
use dockwire_docker::Role;
use dockwire_service::quic::Fingerprint;

use crate::Global;
use crate::error::{Failure, Outcome};
use crate::state::{Peer, StateDir, role_name, valid_name};

/// `dockwire trust …`.
#[derive(Subcommand, Debug)]
pub enum TrustCommand {
    /// Admit a client (its `dockwire id`) with a name and a role
    Add {
        /// The client's fingerprint, as `dockwire id` prints it
        fingerprint: String,
        /// Its name: the owner of the containers it creates
        #[arg(long)]
        name: String,
        /// An admin may act on every container, image, network and volume;
        /// a user only on its own containers
        #[arg(long)]
        admin: bool,
    },
    /// List the admitted clients
    #[command(alias = "ls")]
    List,
    /// Stop admitting a client (by name or fingerprint); its open
    /// connections are refused from their next call
    #[command(alias = "rm")]
    Remove {
        /// The client's name or fingerprint
        peer: String,
    },
}

/// Runs a `trust` command.
pub fn run(global: &Global, command: TrustCommand) -> Outcome {
    let state = StateDir::open(global.state_dir.as_deref())?;
    let authorized = state.authorized();
    match command {
        TrustCommand::Add {
            fingerprint,
            name,
            admin,
        } => {
            let what = format!("trust {name}");
            let fingerprint =
                Fingerprint::from_str(&fingerprint).map_err(|e| Failure::local(&what, e))?;
            if !valid_name(&name) {
                return Err(Failure::local(
                    &what,
                    "a name is 1-64 letters, digits and ._@- starting with a letter or digit",
                ));
            }
            let role = if admin { Role::Admin } else { Role::User };
            authorized.add(Peer {
                fingerprint,
                name: name.clone(),
                role,
            })?;
            println!(
                "trusted {name} ({fingerprint}) as {}, in {}",
                role_name(role),
                authorized.path().display()
            );
            Ok(0)
        }
        TrustCommand::List => {
            println!("{:<64}  {:<20}  ROLE", "FINGERPRINT", "NAME");
            for peer in authorized.load()? {
                println!(
                    "{:<64}  {:<20}  {}",
                    peer.fingerprint,
                    peer.name,
                    role_name(peer.role)
                );
            }
            Ok(0)
        }
        TrustCommand::Remove { peer } => match authorized.remove(&peer)? {
            true => {
                println!("removed {peer}");
                Ok(0)
            }
            false => Err(Failure::local(
                format!("remove {peer}"),
                "no trusted peer has that name or fingerprint",
            )),
        },
    }
}
