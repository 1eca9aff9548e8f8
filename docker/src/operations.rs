//! Every operation of the catalog, declared once: its input type, its
//! name on the wire, the role it needs, and for each carriage it answers
//! on, its output type and its handler. The catalog's traits
//! ([`Operation`], [`Query`], [`Subscription`], [`RawOperation`]), the
//! published lists ([`OPERATIONS`], [`DECLARATIONS`]), the access rule and
//! the router are all made from the one table below.
//!
//! Adding an operation: its input and output types go in
//! [`crate::catalog`], one row here, and its handler in the file of its
//! concern, with the signature its carriage needs:
//!
//! - `query(Output) => h`: `async fn h(Arc<Engine>, Caller, Input) -> Result<Output, CallError>`;
//! - `subscription(Item) => h`: `fn h(Arc<Engine>, Caller, Input) -> impl Stream<Item = Result<Item, CallError>>`;
//! - `raw => h`: `async fn h(Arc<Engine>, Caller, Input, RawIo) -> Result<i32, CallError>` (the exit code).
//!
//! The compiler checks each handler against the declared types; a test
//! checks that each row is routed and documented in `docker/README.md`.

use std::sync::Arc;

use dockwire_core::{CallError, Carriage, ErrorCode, Request};
use dockwire_service::Reply;

use crate::access::{Caller, Role};
use crate::catalog::*;
use crate::engine::Engine;
use crate::error::invalid_input;
use crate::port_forward;
use crate::process;
use crate::reply;
use crate::session;
use crate::{archive, build, containers, exec, fs, images, networks, run, system, volumes};

/// One operation as declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Declaration {
    /// Its name on the wire.
    pub name: &'static str,
    /// The role a peer needs to call it: `User` is any peer with a role.
    pub role: Role,
    /// The carriages it answers on.
    pub carriages: &'static [Carriage],
}

/// The declaration of the operation called `name`, if there is one.
pub fn declared(name: &str) -> Option<&'static Declaration> {
    DECLARATIONS.iter().find(|d| d.name == name)
}

/// Declares the operations: see the module's documentation.
macro_rules! operations {
    ($(
        $input:ident $name:literal $role:ident {
            $($kind:ident $(($output:ty))? => $handler:path),+ $(,)?
        }
    )*) => {
        $(
            impl Operation for $input {
                const NAME: &'static str = $name;
            }
            $(operations!(@trait $input $kind $(($output))?);)+
        )*

        /// Every operation name of the catalog, in catalog order.
        pub const OPERATIONS: &[&str] = &[$($name),*];

        /// Every operation of the catalog, in catalog order.
        pub const DECLARATIONS: &[Declaration] = &[$(
            Declaration {
                name: $name,
                role: Role::$role,
                carriages: &[$(operations!(@carriage $kind)),+],
            }
        ),*];

        /// The reply of `engine` to `caller`'s `request`: the declared
        /// handler of its operation and carriage.
        pub(crate) fn route(engine: Arc<Engine>, caller: Caller, request: Request) -> Reply {
            let input = request.input;
            match (request.operation.as_str(), request.carriage) {
                $($(
                    ($name, operations!(@carriage $kind)) => {
                        operations!(@reply $kind $input $handler, engine, caller, input)
                    }
                )+)*
                (operation, carriage) if declared(operation).is_some() => {
                    Reply::Refuse(invalid_input(format!(
                        "operation {operation:?} does not use the {carriage:?} carriage"
                    )))
                }
                (operation, _) => Reply::Refuse(CallError::new(
                    ErrorCode::NOT_FOUND,
                    format!("unknown operation {operation:?}"),
                )),
            }
        }
    };

    (@trait $input:ident query ($output:ty)) => {
        impl Query for $input {
            type Output = $output;
        }
    };
    (@trait $input:ident subscription ($item:ty)) => {
        impl Subscription for $input {
            type Item = $item;
        }
    };
    (@trait $input:ident raw) => {
        impl RawOperation for $input {}
    };

    (@carriage query) => { Carriage::Json };
    (@carriage subscription) => { Carriage::Json };
    (@carriage raw) => { Carriage::Raw };

    (@reply query $input:ident $handler:path, $engine:ident, $caller:ident, $value:ident) => {
        reply::query($value, move |i: $input| $handler($engine, $caller, i))
    };
    (@reply subscription $input:ident $handler:path, $engine:ident, $caller:ident, $value:ident) => {
        reply::subscription($value, move |i: $input| $handler($engine, $caller, i))
    };
    (@reply raw $input:ident $handler:path, $engine:ident, $caller:ident, $value:ident) => {
        reply::raw($value, move |i: $input, io| $handler($engine, $caller, i, io))
    };
}

operations! {
    Ping "system/ping" User { query(Pong) => system::ping }
    Version "system/version" User { query(models::SystemVersion) => system::version }
    Info "system/info" Admin { query(models::SystemInfo) => system::info }
    Events "system/events" User { subscription(models::EventMessage) => system::events }
    Resources "system/resources" User { query(HostResources) => system::resources }

    ContainerList "container/list" User {
        query(Vec<models::ContainerSummary>) => containers::list
    }
    ContainerInspect "container/inspect" User {
        query(models::ContainerInspectResponse) => containers::inspect
    }
    ContainerCreate "container/create" User { query(Created) => containers::create }
    ContainerStart "container/start" User { query(Done) => containers::start }
    ContainerUpdate "container/update" User { query(Done) => containers::update }
    ContainerStop "container/stop" User { query(Done) => containers::stop }
    ContainerRestart "container/restart" User { query(Done) => containers::restart }
    ContainerKill "container/kill" User { query(Done) => containers::kill }
    ContainerRemove "container/remove" User { query(Done) => containers::remove }
    ContainerWait "container/wait" User { query(Exited) => containers::wait }
    ContainerTop "container/top" User {
        query(models::ContainerTopResponse) => containers::top
    }
    ContainerStats "container/stats" User {
        subscription(models::ContainerStatsResponse) => containers::stats
    }
    ContainerLogs "container/logs" User { subscription(LogItem) => containers::logs }
    ExecInput "container/exec" User {
        subscription(ExecItem) => exec::items,
        raw => session::exec,
    }
    AttachInput "container/attach" User { raw => session::attach }
    RunInput "container/run" User {
        subscription(ExecItem) => run::items,
        raw => session::run,
    }
    ArchiveGet "container/archive-get" User { raw => archive::get }
    ArchivePut "container/archive-put" User { raw => archive::put }
    PortForward "container/port-forward" User { raw => port_forward::session }

    FsStat "fs/stat" User { query(FsEntry) => fs::stat }
    FsList "fs/list" User { query(Vec<FsEntry>) => fs::list }
    FsRead "fs/read" User { raw => fs::read }
    FsWrite "fs/write" User { raw => fs::write }
    FsMkdir "fs/mkdir" User { query(Done) => fs::mkdir }
    FsRemove "fs/remove" User { query(Done) => fs::remove }
    FsRename "fs/rename" User { query(Done) => fs::rename }

    ImageList "image/list" User { query(Vec<models::ImageSummary>) => images::list }
    ImageInspect "image/inspect" User { query(models::ImageInspect) => images::inspect }
    ImagePull "image/pull" User { subscription(PullProgress) => images::pull }
    ImageBuild "image/build" User { raw => build::build }
    ContainerCommit "container/commit" User { query(Committed) => images::commit }
    ImageTag "image/tag" User { query(Done) => images::tag }
    ImagePush "image/push" User { subscription(PullProgress) => images::push }
    ImageRemove "image/remove" User {
        query(Vec<models::ImageDeleteResponseItem>) => images::remove
    }

    NetworkList "network/list" User { query(Vec<models::Network>) => networks::list }
    NetworkCreate "network/create" User { query(NetworkCreated) => networks::create }
    NetworkConnect "network/connect" User { query(Done) => networks::connect }
    NetworkDisconnect "network/disconnect" User { query(Done) => networks::disconnect }
    NetworkRemove "network/remove" User { query(Done) => networks::remove }

    VolumeList "volume/list" User { query(models::VolumeListResponse) => volumes::list }
    VolumeInspect "volume/inspect" User { query(models::Volume) => volumes::inspect }
    VolumeCreate "volume/create" User { query(models::Volume) => volumes::create }
    VolumeRemove "volume/remove" User { query(Done) => volumes::remove }

    ProcessStart "process/start" User { query(ProcessStarted) => process::start }
    ProcessList "process/list" User { query(Vec<ProcessInfo>) => process::list }
    ProcessWait "process/wait" User { query(ProcessExited) => process::wait }
    ProcessSignal "process/signal" User { query(Done) => process::signal }
    ProcessLogs "process/logs" User { subscription(ProcessLogItem) => process::logs }
    ProcessAttach "process/attach" User { raw => process::attach }
    ProcessRemove "process/remove" User { query(Done) => process::remove }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockwire_service::CallContext;
    use serde_json::json;

    #[test]
    fn operation_names_are_unique() {
        let mut names = OPERATIONS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), OPERATIONS.len());
        assert_eq!(OPERATIONS.len(), 55);
    }

    /// An admin caller of an engine that is never reached: routing makes a
    /// reply without calling the engine.
    fn admin() -> (Arc<Engine>, Caller) {
        let engine = Engine::new(
            || Err(bollard::errors::Error::RequestTimeoutError),
            crate::Config::from_env(),
        );
        let ctx = CallContext::new(&dockwire_service::Peer::named("admin".into()), "1");
        let caller = engine.caller(&ctx).expect("without roles, an admin");
        (Arc::new(engine), caller)
    }

    fn request(operation: &str, carriage: Carriage, input: serde_json::Value) -> Request {
        Request {
            operation: operation.into(),
            carriage,
            input,
        }
    }

    /// What a reply refuses with, if it refuses.
    fn refusal(reply: &Reply) -> Option<&CallError> {
        match reply {
            Reply::Refuse(e) => Some(e),
            _ => None,
        }
    }

    #[test]
    fn every_declared_carriage_is_routed_and_no_other() {
        for declaration in DECLARATIONS {
            for carriage in [Carriage::Json, Carriage::Raw] {
                let (engine, caller) = admin();
                // An input no operation takes: routed operations refuse it
                // as invalid input, after finding their handler.
                let reply = route(
                    engine,
                    caller,
                    request(declaration.name, carriage, json!(42)),
                );
                let error = refusal(&reply).expect("a number is no operation's input");
                assert_eq!(error.code, ErrorCode::INVALID_INPUT, "{}", declaration.name);
                let routed = error.message.starts_with("invalid input:");
                assert_eq!(
                    routed,
                    declaration.carriages.contains(&carriage),
                    "{} on {carriage:?}: {}",
                    declaration.name,
                    error.message
                );
            }
        }
        let (engine, caller) = admin();
        let reply = route(
            engine,
            caller,
            request("container/nope", Carriage::Json, json!({})),
        );
        assert_eq!(
            refusal(&reply).map(|e| e.code.clone()),
            Some(ErrorCode::NOT_FOUND)
        );
    }

    #[test]
    fn every_declared_operation_is_in_the_readme_catalog_with_its_carriages_and_role() {
        let readme = include_str!("../README.md");
        let rows: Vec<Vec<&str>> = readme
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| line.split('|').map(str::trim).collect())
            .collect();
        for declaration in DECLARATIONS {
            let named = format!("`{}`", declaration.name);
            // Cells: "", operation(s), carriage, role, input, output, "".
            let mine: Vec<&Vec<&str>> = rows
                .iter()
                .filter(|cells| {
                    cells
                        .get(1)
                        .is_some_and(|c| c.split(", ").any(|n| n == named))
                })
                .collect();
            assert!(
                !mine.is_empty(),
                "{named} is not in docker/README.md's catalog"
            );
            for carriage in declaration.carriages {
                let word = match carriage {
                    Carriage::Json => "json",
                    Carriage::Raw => "raw",
                };
                assert!(
                    mine.iter().any(|cells| cells[2].contains(word)),
                    "docker/README.md does not give {named} the {word} carriage"
                );
            }
            let role = match declaration.role {
                Role::Admin => "admin",
                Role::User => "user",
            };
            assert!(
                mine.iter().all(|cells| cells[3] == role),
                "docker/README.md does not say {named} needs the {role} role"
            );
        }
    }
}
