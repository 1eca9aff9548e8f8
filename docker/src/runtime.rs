//! The OCI runtime a container runs under: which one a caller may ask for
//! (`ContainerSpec::runtime`), the one the operator puts every `user`
//! container under ([`Config::with_user_runtime`]), and whether a
//! container runs in gVisor, where some of the engine's answers are wrong
//! and dockwire answers differently (`top`, `cp` to `/tmp`, exec signals).
//!
//! The rule is decided here, once: an admin gets the runtime it asks for
//! (the engine refuses one it does not know); a user gets the operator's
//! runtime when one is set, whatever it asks, and otherwise only one of
//! [`USER_RUNTIMES`], which the engine must have.
//!
//! [`Config::with_user_runtime`]: crate::Config::with_user_runtime

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::Docker;
use dockwire_core::{CallError, ErrorCode};

use crate::access::{Caller, forbidden};
use crate::config::{Config, ExecSignals};
use crate::dialect;
use crate::error::{self, Subject, engine_error, invalid_input};
use crate::signal;

/// Docker's default runtime.
pub const RUNC: &str = "runc";

/// gVisor's runtime, as `scripts/engine` registers it with dockerd.
pub const RUNSC: &str = "runsc";

/// The runtimes a `user` may ask for (when the operator sets none for it):
/// runc, and gVisor when the engine has it.
pub const USER_RUNTIMES: &[&str] = &[RUNC, RUNSC];

/// The runtime of a container `caller` creates from a spec that asks for
/// `asked`; `None`: the engine's default. A name that is not one is
/// `INVALID_INPUT`; a user's request for a runtime outside
/// [`USER_RUNTIMES`] is `FORBIDDEN`.
pub(crate) fn chosen(
    config: &Config,
    caller: &Caller,
    asked: Option<&str>,
) -> Result<Option<String>, CallError> {
    if let Some(asked) = asked {
        check_name(asked)?;
    }
    if caller.is_admin() {
        return Ok(asked.map(str::to_owned));
    }
    if let Some(forced) = &config.user_runtime {
        return Ok(Some(forced.clone()));
    }
    match asked {
        Some(asked) if !USER_RUNTIMES.contains(&asked) => Err(forbidden(format!(
            "runtime {asked:?} needs an admin; users may choose {}",
            USER_RUNTIMES.join(" or ")
        ))),
        asked => Ok(asked.map(str::to_owned)),
    }
}

/// Refuses a user's container under `runtime` when the engine does not
/// have it, before anything is made: `INVALID_INPUT` for a runtime the
/// user asked for, `UNAVAILABLE` for the operator's (`forced`).
pub(crate) async fn check_installed(
    docker: &Docker,
    runtime: &str,
    forced: bool,
) -> Result<(), CallError> {
    if runtime == RUNC {
        return Ok(());
    }
    let installed = installed(docker, runtime)
        .await
        .map_err(|e| engine_error(Subject::Engine, e))?;
    match (installed, forced) {
        (true, _) => Ok(()),
        (false, false) => Err(invalid_input(format!(
            "the engine has no runtime {runtime:?}"
        ))),
        (false, true) => Err(CallError::new(
            ErrorCode::UNAVAILABLE,
            format!(
                "the server puts users' containers under runtime {runtime:?}, which the engine does not have"
            ),
        )),
    }
}

/// Whether the engine has `runtime`.
pub(crate) async fn installed(
    docker: &Docker,
    runtime: &str,
) -> Result<bool, bollard::errors::Error> {
    let info = docker.info().await?;
    Ok(info
        .runtimes
        .is_some_and(|runtimes| runtimes.contains_key(runtime)))
}

/// Whether containers under `runtime` run in gVisor: `runsc`, or a
/// runtime the engine registered under another name (`runsc-debug`, a
/// `default-runtime`) whose program is runsc. Asks the engine only for a
/// name other than these two; an engine that does not answer counts as
/// runc.
///
/// Podman names every container's runtime `oci` (its service's, which
/// `/info` gives as the default). The answer for a name is kept for
/// [`KEPT`]: `/info` takes about 150 ms on Podman 4.3, and every exec,
/// `top` and copy asks.
pub(crate) async fn is_gvisor(docker: &Docker, runtime: Option<&str>) -> bool {
    let name = match runtime {
        None | Some(RUNC) => return false,
        Some(RUNSC) => return true,
        Some(name) => name,
    };
    if let Some(known) = known_gvisor(name) {
        return known;
    }
    let Ok(info) = docker.info().await else {
        return false;
    };
    let mut runtimes = info.runtimes.unwrap_or_default();
    let registered = match runtimes.remove(name) {
        Some(runtime) => Some(runtime),
        None if name == PODMAN_SERVICE_RUNTIME => {
            let default = info.default_runtime.unwrap_or_default();
            runtimes.remove(&default)
        }
        None => None,
    };
    let gvisor = registered
        .and_then(|r| r.path)
        .as_deref()
        .is_some_and(is_runsc_program);
    GVISOR_NAMES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.to_owned(), (Instant::now(), gvisor));
    gvisor
}

/// What Podman's inspect names every container's runtime.
const PODMAN_SERVICE_RUNTIME: &str = "oci";

/// How long [`is_gvisor`]'s answer for a runtime's name is kept.
const KEPT: Duration = Duration::from_secs(10);

/// [`is_gvisor`]'s answers by runtime name, with when each was learned.
static GVISOR_NAMES: Mutex<BTreeMap<String, (Instant, bool)>> = Mutex::new(BTreeMap::new());

/// The kept answer for the runtime `name`, if still fresh.
fn known_gvisor(name: &str) -> Option<bool> {
    let known = GVISOR_NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let &(learned, gvisor) = known.get(name)?;
    (learned.elapsed() < KEPT).then_some(gvisor)
}

/// Whether a runtime's program (`/usr/bin/runsc`, `runsc`) is gVisor's.
fn is_runsc_program(path: &str) -> bool {
    path.rsplit('/').next() == Some(RUNSC)
}

/// Whether container `id` runs in gVisor, as the engine reports its
/// runtime.
pub(crate) async fn runs_gvisor(docker: &Docker, id: &str) -> Result<bool, CallError> {
    let info = dialect::inspect_container(docker, id)
        .await
        .map_err(error::container)?;
    let runtime = info.host_config.and_then(|h| h.runtime);
    Ok(is_gvisor(docker, runtime.as_deref()).await)
}

/// How signals reach the execs of container `id`. Through the engine when
/// configured so, for a gVisor container (the exec's pid the engine
/// reports is runsc's helper on the host, not the process, which lives in
/// gVisor's own kernel), and whenever this server does not see the
/// container's processes: host pids only when this server shares the
/// engine host's pid namespace (a server in a container of its own, with
/// the engine's socket mounted, does not). Decided per container, from
/// one inspect, before the exec is made (its marker is given at create).
pub(crate) async fn exec_signals(
    docker: &Docker,
    id: &str,
    configured: ExecSignals,
) -> ExecSignals {
    if configured == ExecSignals::Engine {
        return configured;
    }
    match dialect::inspect_container(docker, id).await {
        Ok(info) => {
            let runtime = info.host_config.and_then(|h| h.runtime);
            let gvisor = is_gvisor(docker, runtime.as_deref()).await;
            let init = info.state.and_then(|s| s.pid).filter(|p| *p > 0);
            choose_exec_signals(gvisor, init, |pid| signal::in_one_container(pid, pid))
        }
        // Gone, or the engine is away: the exec's create will say so.
        Err(_) => configured,
    }
}

/// [`exec_signals`]' choice for a configured `HostPid`: host pids only for
/// a runc container whose init pid (`init`, the engine's number) is a
/// process here in a pid namespace other than this server's (`visible`).
/// A container that is not running (no `init`) has no exec to signal:
/// host pids, as configured.
fn choose_exec_signals(
    gvisor: bool,
    init: Option<i64>,
    visible: impl Fn(i64) -> bool,
) -> ExecSignals {
    match init {
        _ if gvisor => ExecSignals::Engine,
        Some(pid) if !visible(pid) => {
            tracing::debug!(
                pid,
                "this server does not see the container's processes (it does not share the \
                 engine's pid namespace): its execs are signalled through the engine"
            );
            ExecSignals::Engine
        }
        _ => ExecSignals::HostPid,
    }
}

/// A runtime's name as dockerd registers them: letters, digits, `.`,
/// `_` and `-`.
fn check_name(name: &str) -> Result<(), CallError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    match valid {
        true => Ok(()),
        false => Err(invalid_input(format!("{name:?} is not a runtime's name"))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn execs_use_host_pids_only_where_this_server_sees_the_containers_processes() {
        use super::choose_exec_signals as choose;
        let seen = |_| true;
        let unseen = |_| false;
        assert_eq!(choose(false, Some(42), seen), ExecSignals::HostPid);
        assert_eq!(choose(false, Some(42), unseen), ExecSignals::Engine);
        assert_eq!(choose(true, Some(42), seen), ExecSignals::Engine);
        assert_eq!(choose(false, None, unseen), ExecSignals::HostPid);
        // This server's own process is in its own pid namespace: not a
        // container's, as a server in a container sees the number the
        // engine gives for another container's init.
        let own = i64::from(std::process::id());
        assert!(!crate::signal::in_one_container(own, own));
        assert!(!crate::signal::in_one_container(
            i64::from(i32::MAX),
            i64::from(i32::MAX)
        ));
    }

    use super::*;
    use crate::access::Role;

    fn caller(role: Role) -> Caller {
        Caller {
            role,
            ..Caller::test_user("k")
        }
    }

    #[test]
    fn an_admin_gets_the_runtime_it_asks_for() {
        let config = Config::from_env().with_user_runtime(RUNSC);
        let admin = caller(Role::Admin);
        assert_eq!(chosen(&config, &admin, None).unwrap(), None);
        assert_eq!(
            chosen(&config, &admin, Some("kata")).unwrap(),
            Some("kata".into())
        );
        assert_eq!(
            chosen(&config, &admin, Some(RUNC)).unwrap(),
            Some(RUNC.into())
        );
    }

    #[test]
    fn a_user_may_choose_runc_or_runsc_only() {
        let config = Config::from_env();
        let user = caller(Role::User);
        assert_eq!(chosen(&config, &user, None).unwrap(), None);
        for ok in USER_RUNTIMES {
            assert_eq!(
                chosen(&config, &user, Some(ok)).unwrap(),
                Some((*ok).into())
            );
        }
        let refused = chosen(&config, &user, Some("kata")).unwrap_err();
        assert_eq!(refused.code, ErrorCode::FORBIDDEN);
        assert!(
            refused.message.contains("runc or runsc"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn the_operators_user_runtime_wins_whatever_a_user_asks() {
        let config = Config::from_env().with_user_runtime(RUNSC);
        let user = caller(Role::User);
        for asked in [None, Some(RUNC), Some(RUNSC), Some("kata")] {
            assert_eq!(
                chosen(&config, &user, asked).unwrap(),
                Some(RUNSC.into()),
                "{asked:?}"
            );
        }
    }

    #[test]
    fn a_runtime_name_that_is_not_one_is_invalid_input_for_everyone() {
        let config = Config::from_env().with_user_runtime(RUNSC);
        for role in [Role::Admin, Role::User] {
            for bad in ["", "run c", "../runc", "runc\0", &"r".repeat(65)] {
                let refused = chosen(&config, &caller(role), Some(bad)).unwrap_err();
                assert_eq!(refused.code, ErrorCode::INVALID_INPUT, "{bad:?}");
            }
        }
    }

    #[test]
    fn a_runtime_whose_program_is_runsc_is_gvisor() {
        for runsc in ["/usr/bin/runsc", "runsc", "/opt/gvisor/bin/runsc"] {
            assert!(is_runsc_program(runsc), "{runsc}");
        }
        for other in ["/usr/bin/runc", "/usr/bin/runsc-shim", "/usr/bin/crun", ""] {
            assert!(!is_runsc_program(other), "{other}");
        }
    }
}
