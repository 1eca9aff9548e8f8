//! The server's per-role policy on containers' resources: the limits a
//! container gets when its caller gives none (defaults) and the most a
//! caller may ask (caps), for `user` peers and for admins. One place:
//! `container/create`, `container/run` and `container/update` all ask it,
//! before anything is made or changed.
//!
//! By default users get memory 1g, 512 processes and their log rotated at
//! 10m × 3 files, and may ask at most memory 4g (memory and swap 8g,
//! twice that, as Docker's own default), as many CPUs as this server's
//! host has, 4096 processes and that log rotation. A capped limit the
//! caller leaves unset, with no default, is set to the cap (unlimited
//! would be above it). Admins get no defaults and no caps unless the
//! operator sets them.

use dockwire_core::{CallError, ErrorCode};

use crate::access::Role;
use crate::catalog::{ContainerSpec, ContainerUpdate};
use crate::error::invalid_input;
use crate::units::{parse_size, show_size};

/// The resource limits the policy governs, as numbers. `None`: not set
/// (the engine's default). `0` memory, CPUs or pids, `-1` memory and swap
/// or pids: unlimited, as Docker reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Memory, bytes.
    pub memory: Option<i64>,
    /// Memory plus swap, bytes.
    pub memory_swap: Option<i64>,
    /// CPUs, in billionths.
    pub nano_cpus: Option<i64>,
    /// Processes.
    pub pids_limit: Option<i64>,
    /// Largest log file (`json-file`'s `max-size`), bytes.
    pub log_max_size: Option<i64>,
    /// Log files kept (`json-file`'s `max-file`).
    pub log_max_file: Option<i64>,
}

/// One role's defaults and caps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RolePolicy {
    /// What a container gets when its caller leaves a limit unset.
    pub defaults: Limits,
    /// The most a caller may ask.
    pub caps: Limits,
}

/// The policy of each role; see the module's documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// `user` peers'.
    pub user: RolePolicy,
    /// Admins'.
    pub admin: RolePolicy,
    /// The host ports `user` peers may publish on 127.0.0.1 (a port the
    /// engine picks is always in); `None`, the default: users publish
    /// nothing.
    pub user_ports: Option<HostPorts>,
    /// What one `user` peer's image build may take.
    pub user_build: BuildLimits,
}

/// What one `user` peer's image build may take: a build is a process on
/// the engine's host, and its context a stream into the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildLimits {
    /// The largest context, bytes (the tar as sent). Default 1 GiB.
    pub context_max: u64,
    /// The longest a build may run, from its first byte to its image.
    /// Default 30 minutes.
    pub timeout: std::time::Duration,
}

impl Default for BuildLimits {
    fn default() -> Self {
        BuildLimits {
            context_max: 1 << 30,
            timeout: std::time::Duration::from_secs(30 * 60),
        }
    }
}

impl BuildLimits {
    /// The largest context and the longest build.
    pub fn new(context_max: u64, timeout: std::time::Duration) -> Self {
        BuildLimits {
            context_max,
            timeout,
        }
    }
}

/// A range of host ports, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPorts {
    /// The lowest.
    pub first: u16,
    /// The highest.
    pub last: u16,
}

impl Default for Policy {
    fn default() -> Self {
        const M: i64 = 1 << 20;
        const G: i64 = 1 << 30;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let log = (Some(10 * M), Some(3));
        Policy {
            user: RolePolicy {
                defaults: Limits {
                    memory: Some(G),
                    pids_limit: Some(512),
                    log_max_size: log.0,
                    log_max_file: log.1,
                    ..Limits::default()
                },
                caps: Limits {
                    memory: Some(4 * G),
                    memory_swap: Some(8 * G),
                    nano_cpus: Some(i64::try_from(cores).unwrap_or(1) * NANO),
                    pids_limit: Some(4096),
                    log_max_size: log.0,
                    log_max_file: log.1,
                },
            },
            admin: RolePolicy::default(),
            user_ports: None,
            user_build: BuildLimits::default(),
        }
    }
}

/// Billionths of a CPU in one.
pub(crate) const NANO: i64 = 1_000_000_000;

impl Policy {
    /// `role`'s policy.
    pub fn of(&self, role: Role) -> &RolePolicy {
        match role {
            Role::Admin => &self.admin,
            Role::User => &self.user,
        }
    }

    /// `asked` with `role`'s defaults filled in, or `FORBIDDEN` naming the
    /// first limit above `role`'s cap.
    pub(crate) fn apply(&self, role: Role, asked: Limits) -> Result<Limits, CallError> {
        let policy = self.of(role);
        let d = policy.defaults;
        let mut limits = Limits {
            memory: asked.memory.or(d.memory),
            memory_swap: asked.memory_swap.or(d.memory_swap),
            nano_cpus: asked.nano_cpus.or(d.nano_cpus),
            pids_limit: asked.pids_limit.or(d.pids_limit),
            log_max_size: asked.log_max_size.or(d.log_max_size),
            log_max_file: asked.log_max_file.or(d.log_max_file),
        };
        // A capped limit left unset would be unlimited: the cap then. Not
        // swap: Docker's default (twice the memory) is within its cap.
        let c = policy.caps;
        limits.memory = limits.memory.or(c.memory);
        limits.nano_cpus = limits.nano_cpus.or(c.nano_cpus);
        limits.pids_limit = limits.pids_limit.or(c.pids_limit);
        limits.log_max_size = limits.log_max_size.or(c.log_max_size);
        limits.log_max_file = limits.log_max_file.or(c.log_max_file);
        self.check(role, &limits)?;
        Ok(limits)
    }

    /// `FORBIDDEN` naming the first limit `limits` sets above `role`'s
    /// cap (unlimited is above any cap).
    pub(crate) fn check(&self, role: Role, limits: &Limits) -> Result<(), CallError> {
        let caps = self.of(role).caps;
        let whose = match role {
            Role::Admin => "admins",
            Role::User => "users",
        };
        let fields = [
            ("memory", limits.memory, caps.memory, Shown::Size),
            (
                "memory-swap",
                limits.memory_swap,
                caps.memory_swap,
                Shown::Size,
            ),
            ("cpus", limits.nano_cpus, caps.nano_cpus, Shown::Cpus),
            (
                "pids-limit",
                limits.pids_limit,
                caps.pids_limit,
                Shown::Count,
            ),
            (
                "log max-size",
                limits.log_max_size,
                caps.log_max_size,
                Shown::Size,
            ),
            (
                "log max-file",
                limits.log_max_file,
                caps.log_max_file,
                Shown::Count,
            ),
        ];
        for (name, value, cap, shown) in fields {
            let (Some(value), Some(cap)) = (value, cap) else {
                continue;
            };
            // 0 and -1 are unlimited for each of them; 0 swap is "twice
            // the memory", within a swap cap of twice the memory's cap.
            let unlimited = value < 0 || (value == 0 && name != "memory-swap");
            if unlimited || value > cap {
                let value = match unlimited {
                    true => "unlimited".to_owned(),
                    false => shown.show(value),
                };
                return Err(CallError::new(
                    ErrorCode::FORBIDDEN,
                    format!(
                        "{name} {value} is above this server's cap for {whose} ({})",
                        shown.show(cap)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// How a limit is written in messages.
#[derive(Clone, Copy)]
enum Shown {
    Size,
    Cpus,
    Count,
}

impl Shown {
    fn show(self, value: i64) -> String {
        match self {
            Shown::Size => show_size(value),
            Shown::Cpus => format!("{}", value as f64 / NANO as f64),
            Shown::Count => value.to_string(),
        }
    }
}

/// The limits `spec` asks, as numbers; `INVALID_INPUT` for a size that is
/// not one, CPUs that are not a positive number, or log options other
/// than `max-size` and `max-file`.
pub(crate) fn asked(spec: &ContainerSpec) -> Result<Limits, CallError> {
    let mut log_max_size = None;
    let mut log_max_file = None;
    for (key, value) in &spec.log_opts {
        match key.as_str() {
            "max-size" => log_max_size = Some(positive_size("log max-size", value)?),
            "max-file" => match value.parse::<i64>() {
                Ok(n) if n >= 1 => log_max_file = Some(n),
                _ => {
                    return Err(invalid_input(format!(
                        "log max-file must be a count of at least 1, got {value:?}"
                    )));
                }
            },
            other => {
                return Err(invalid_input(format!(
                    "log option {other:?} is not supported: only max-size and max-file (json-file)"
                )));
            }
        }
    }
    Ok(Limits {
        memory: spec
            .memory
            .as_deref()
            .map(|m| size("memory", m))
            .transpose()?,
        memory_swap: spec.memory_swap.as_deref().map(swap).transpose()?,
        nano_cpus: spec.cpus.map(nano_cpus).transpose()?,
        pids_limit: spec.pids_limit,
        log_max_size,
        log_max_file,
    })
}

/// The limits `update` asks, as numbers (as [`asked`]).
pub(crate) fn asked_update(update: &ContainerUpdate) -> Result<Limits, CallError> {
    Ok(Limits {
        memory: update
            .memory
            .as_deref()
            .map(|m| size("memory", m))
            .transpose()?,
        memory_swap: update.memory_swap.as_deref().map(swap).transpose()?,
        nano_cpus: update.cpus.map(nano_cpus).transpose()?,
        pids_limit: update.pids_limit,
        ..Limits::default()
    })
}

/// Bytes of `text` for the limit `name`, or `INVALID_INPUT`.
pub(crate) fn size(name: &str, text: &str) -> Result<i64, CallError> {
    parse_size(text).map_err(|e| invalid_input(format!("{name}: {e}")))
}

/// Memory and swap: a size, or `-1` for unlimited swap.
pub(crate) fn swap(text: &str) -> Result<i64, CallError> {
    match text {
        "-1" => Ok(-1),
        _ => size("memory-swap", text),
    }
}

fn positive_size(name: &str, text: &str) -> Result<i64, CallError> {
    match size(name, text)? {
        0 => Err(invalid_input(format!("{name} must be above 0"))),
        bytes => Ok(bytes),
    }
}

/// Billionths of `cpus` CPUs; `INVALID_INPUT` unless a number from 0
/// (unlimited) to a million.
pub(crate) fn nano_cpus(cpus: f64) -> Result<i64, CallError> {
    if !(0.0..=1e6).contains(&cpus) {
        return Err(invalid_input(format!(
            "cpus must be a number from 0 (unlimited) up, got {cpus}"
        )));
    }
    Ok((cpus * NANO as f64).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_policy() -> Policy {
        let mut policy = Policy::default();
        policy.user.caps.nano_cpus = Some(2 * NANO);
        policy
    }

    #[test]
    fn users_get_the_defaults_and_admins_none() {
        let policy = user_policy();
        let users = policy.apply(Role::User, Limits::default()).unwrap();
        assert_eq!(users.memory, Some(1 << 30));
        assert_eq!(users.pids_limit, Some(512));
        assert_eq!(users.log_max_size, Some(10 << 20));
        assert_eq!(users.log_max_file, Some(3));
        assert_eq!(users.nano_cpus, Some(2 * NANO), "a cap without default");
        assert_eq!(users.memory_swap, None, "Docker's default swap");
        let admins = policy.apply(Role::Admin, Limits::default()).unwrap();
        assert_eq!(admins, Limits::default());
    }

    #[test]
    fn a_users_limit_above_its_cap_is_forbidden_by_name() {
        let policy = user_policy();
        let over = |limits: Limits| {
            let e = policy.apply(Role::User, limits).unwrap_err();
            assert_eq!(e.code, ErrorCode::FORBIDDEN);
            e.message
        };
        let asked = Limits::default();
        assert_eq!(
            over(Limits {
                memory: Some(5 << 30),
                ..asked
            }),
            "memory 5g is above this server's cap for users (4g)"
        );
        assert_eq!(
            over(Limits {
                memory: Some(0),
                ..asked
            }),
            "memory unlimited is above this server's cap for users (4g)"
        );
        assert!(
            over(Limits {
                pids_limit: Some(-1),
                ..asked
            })
            .starts_with("pids-limit unlimited")
        );
        assert!(
            over(Limits {
                pids_limit: Some(4097),
                ..asked
            })
            .starts_with("pids-limit 4097")
        );
        assert!(
            over(Limits {
                nano_cpus: Some(3 * NANO),
                ..asked
            })
            .starts_with("cpus 3 is above")
        );
        assert!(
            over(Limits {
                memory_swap: Some(-1),
                ..asked
            })
            .starts_with("memory-swap unlimited")
        );
        assert!(
            over(Limits {
                log_max_size: Some(11 << 20),
                ..asked
            })
            .starts_with("log max-size 11m")
        );
        // At the caps: allowed.
        let at = policy
            .apply(
                Role::User,
                Limits {
                    memory: Some(4 << 30),
                    memory_swap: Some(8 << 30),
                    nano_cpus: Some(2 * NANO),
                    pids_limit: Some(4096),
                    log_max_size: Some(10 << 20),
                    log_max_file: Some(3),
                },
            )
            .unwrap();
        assert_eq!(at.memory, Some(4 << 30));
        // Admins have no caps by default.
        assert!(
            policy
                .apply(
                    Role::Admin,
                    Limits {
                        memory: Some(0),
                        pids_limit: Some(-1),
                        ..asked
                    }
                )
                .is_ok()
        );
    }

    #[test]
    fn a_specs_limits_are_parsed_or_refused_as_invalid_input() {
        let mut spec = ContainerSpec::new("img", ["true"]);
        spec.memory = Some("64m".into());
        spec.memory_swap = Some("-1".into());
        spec.cpus = Some(1.5);
        spec.pids_limit = Some(32);
        spec.log_opts.insert("max-size".into(), "1k".into());
        spec.log_opts.insert("max-file".into(), "2".into());
        let limits = asked(&spec).unwrap();
        assert_eq!(limits.memory, Some(64 << 20));
        assert_eq!(limits.memory_swap, Some(-1));
        assert_eq!(limits.nano_cpus, Some(1_500_000_000));
        assert_eq!(limits.log_max_size, Some(1024));
        assert_eq!(limits.log_max_file, Some(2));
        for bad in [
            |s: &mut ContainerSpec| s.memory = Some("lots".into()),
            |s: &mut ContainerSpec| s.memory_swap = Some("-2".into()),
            |s: &mut ContainerSpec| s.cpus = Some(-1.0),
            |s: &mut ContainerSpec| s.cpus = Some(f64::NAN),
            |s: &mut ContainerSpec| {
                s.log_opts.insert("max-size".into(), "0".into());
            },
            |s: &mut ContainerSpec| {
                s.log_opts.insert("max-file".into(), "0".into());
            },
            |s: &mut ContainerSpec| {
                s.log_opts.insert("labels".into(), "x".into());
            },
        ] {
            let mut spec = ContainerSpec::new("img", ["true"]);
            bad(&mut spec);
            let e = asked(&spec).unwrap_err();
            assert_eq!(e.code, ErrorCode::INVALID_INPUT, "{spec:?}");
        }
    }
}
