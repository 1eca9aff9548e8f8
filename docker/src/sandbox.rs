//! A spec's sandbox fields checked and written into the engine's create
//! body: resource limits (after the server's [`policy`](crate::policy)),
//! ulimits, `/dev/shm`, a read-only root and tmpfs mounts, capabilities,
//! `no-new-privileges`, host name, init, stop signal and timeout, restart
//! policy and log rotation. Nonsense is `INVALID_INPUT` before the engine
//! is asked; for a `user`, adding capabilities and turning
//! `no-new-privileges` off are `FORBIDDEN` (its drops add to the
//! operator's, see [`hardening`](crate::hardening)).

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use dockwire_core::CallError;
use rustix::process::{self as rlimit, Resource};

use crate::access::{Caller, forbidden};
use crate::catalog::ContainerSpec;
use crate::config::Config;
use crate::error::invalid_input;
use crate::policy::{self, Limits};
use crate::signal;

/// Writes `spec`'s sandbox fields, with `caller`'s role's policy applied,
/// into `body` and its `host`.
pub(crate) fn apply(
    config: &Config,
    caller: &Caller,
    spec: &ContainerSpec,
    body: &mut ContainerCreateBody,
    host: &mut HostConfig,
) -> Result<(), CallError> {
    let limits = config.policy.apply(caller.role, policy::asked(spec)?)?;
    resources(&limits, host);
    host.log_config = log_config(&limits);
    host.ulimits = ulimits(caller, spec)?;
    host.shm_size = spec
        .shm_size
        .as_deref()
        .map(|s| policy::size("shm-size", s))
        .transpose()?;
    host.readonly_rootfs = spec.read_only.then_some(true);
    host.tmpfs = tmpfs(spec)?;
    host.cap_add = capabilities(&spec.cap_add)?;
    if host.cap_add.is_some() && !caller.is_admin() {
        return Err(forbidden("adding capabilities (cap-add) needs an admin"));
    }
    host.cap_drop = capabilities(&spec.cap_drop)?;
    host.security_opt = security_opt(caller, &spec.security_opt)?;
    host.init = spec.init;
    host.restart_policy = spec.restart.as_deref().map(restart_policy).transpose()?;
    let restarts = host
        .restart_policy
        .as_ref()
        .is_some_and(|r| r.name != Some(RestartPolicyNameEnum::NO));
    if restarts && spec.auto_remove {
        // As docker's `--rm` with `--restart`: a container removed when
        // it exits cannot be restarted.
        return Err(invalid_input("restart and autoRemove conflict"));
    }
    body.hostname = spec.hostname.as_deref().map(hostname).transpose()?;
    if let Some(sig) = &spec.stop_signal {
        if signal::parse(sig).is_none() {
            return Err(invalid_input(format!(
                "stop-signal {sig:?} is not a signal"
            )));
        }
        body.stop_signal = Some(sig.clone());
    }
    if let Some(timeout) = spec.stop_timeout {
        if timeout < 0 {
            return Err(invalid_input(format!(
                "stop-timeout must be seconds from 0 up, got {timeout}"
            )));
        }
        body.stop_timeout = Some(timeout);
    }
    Ok(())
}

/// Writes `limits`' resources into `host` (`update` uses its own body).
fn resources(limits: &Limits, host: &mut HostConfig) {
    host.memory = limits.memory;
    host.memory_swap = limits.memory_swap;
    host.nano_cpus = limits.nano_cpus;
    host.pids_limit = limits.pids_limit;
}

/// The `json-file` driver rotating as `limits` says, or the engine's
/// default logging when they say nothing.
fn log_config(limits: &Limits) -> Option<HostConfigLogConfig> {
    if limits.log_max_size.is_none() && limits.log_max_file.is_none() {
        return None;
    }
    let mut options = HashMap::new();
    if let Some(size) = limits.log_max_size {
        options.insert("max-size".to_owned(), size.to_string());
    }
    if let Some(files) = limits.log_max_file {
        options.insert("max-file".to_owned(), files.to_string());
    }
    Some(HostConfigLogConfig {
        typ: Some("json-file".into()),
        config: Some(options),
    })
}

/// Docker's ulimit names and the resource each sets.
const ULIMITS: [(&str, Resource); 15] = [
    ("core", Resource::Core),
    ("cpu", Resource::Cpu),
    ("data", Resource::Data),
    ("fsize", Resource::Fsize),
    ("locks", Resource::Locks),
    ("memlock", Resource::Memlock),
    ("msgqueue", Resource::Msgqueue),
    ("nice", Resource::Nice),
    ("nofile", Resource::Nofile),
    ("nproc", Resource::Nproc),
    ("rss", Resource::Rss),
    ("rtprio", Resource::Rtprio),
    ("rttime", Resource::Rttime),
    ("sigpending", Resource::Sigpending),
    ("stack", Resource::Stack),
];

/// The spec's ulimits. A `user`'s hard limit may not be above this
/// server's own hard limit of the same resource: the engine sets them as
/// root and would let a container raise what no process of the host has
/// (real-time priority, locked memory, open files).
fn ulimits(
    caller: &Caller,
    spec: &ContainerSpec,
) -> Result<Option<Vec<ResourcesUlimits>>, CallError> {
    if spec.ulimits.is_empty() {
        return Ok(None);
    }
    let mut limits = Vec::new();
    for u in &spec.ulimits {
        let Some(&(_, resource)) = ULIMITS.iter().find(|(name, _)| *name == u.name) else {
            let names: Vec<&str> = ULIMITS.iter().map(|(name, _)| *name).collect();
            return Err(invalid_input(format!(
                "ulimit {:?} is not one of {}",
                u.name,
                names.join(", ")
            )));
        };
        if u.soft < 0 || u.hard < u.soft {
            return Err(invalid_input(format!(
                "ulimit {}={}:{} needs 0 <= soft <= hard",
                u.name, u.soft, u.hard
            )));
        }
        let ours = rlimit::getrlimit(resource).maximum;
        let above = ours.is_some_and(|max| u64::try_from(u.hard).is_ok_and(|hard| hard > max));
        if above && !caller.is_admin() {
            return Err(forbidden(format!(
                "ulimit {} hard limit {} is above this server's own ({})",
                u.name,
                u.hard,
                ours.unwrap_or_default()
            )));
        }
        limits.push(ResourcesUlimits {
            name: Some(u.name.clone()),
            soft: Some(u.soft),
            hard: Some(u.hard),
        });
    }
    Ok(Some(limits))
}

fn tmpfs(spec: &ContainerSpec) -> Result<Option<HashMap<String, String>>, CallError> {
    if spec.tmpfs.is_empty() {
        return Ok(None);
    }
    for (path, options) in &spec.tmpfs {
        let absolute = path.starts_with('/') && path.len() > 1;
        let plain = |s: &str| !s.contains(['\0', '\n', ' ']);
        if !absolute || !plain(path) || !plain(options) || path.contains(':') {
            return Err(invalid_input(format!(
                "tmpfs needs an absolute path other than / and plain options, got {path:?}:{options:?}"
            )));
        }
    }
    Ok(Some(spec.tmpfs.clone().into_iter().collect()))
}

/// Capability names as Docker takes them (`NET_RAW`, `cap_net_raw`,
/// `ALL`), upper-cased; `INVALID_INPUT` for anything else.
fn capabilities(caps: &[String]) -> Result<Option<Vec<String>>, CallError> {
    if caps.is_empty() {
        return Ok(None);
    }
    caps.iter()
        .map(|c| {
            let upper = c.to_ascii_uppercase();
            let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
            match !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                true => Ok(upper),
                false => Err(invalid_input(format!("{c:?} is not a capability"))),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Only `no-new-privileges[:true|false]` (or `=`); turning it off is
/// `FORBIDDEN` for a user (whose containers always have it).
fn security_opt(caller: &Caller, options: &[String]) -> Result<Option<Vec<String>>, CallError> {
    if options.is_empty() {
        return Ok(None);
    }
    let mut written = Vec::new();
    for option in options {
        let on = match option.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => true,
            "no-new-privileges:false" | "no-new-privileges=false" => false,
            other => {
                return Err(invalid_input(format!(
                    "security-opt {other:?} is not supported: only no-new-privileges[:true|false]"
                )));
            }
        };
        if !on && !caller.is_admin() {
            return Err(forbidden("turning no-new-privileges off needs an admin"));
        }
        written.push(format!("no-new-privileges:{on}"));
    }
    Ok(Some(written))
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub(crate) fn restart_policy(text: &str) -> Result<RestartPolicy, CallError> {
    let (name, retries) = match text.split_once(':') {
        Some((name, n)) => (name, Some(n)),
        None => (text, None),
    };
    let refused = || {
        invalid_input(format!(
            "restart {text:?} is not one of no, always, unless-stopped, on-failure[:N]"
        ))
    };
    let name = match name {
        "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => return Err(refused()),
    };
    let maximum_retry_count = match retries {
        None => None,
        Some(n) if name == RestartPolicyNameEnum::ON_FAILURE => {
            Some(n.parse::<u32>().map_err(|_| refused())?.into())
        }
        Some(_) => return Err(refused()),
    };
    Ok(RestartPolicy {
        name: Some(name),
        maximum_retry_count,
    })
}

/// A host name: letters, digits, `-` and `.`, at most 253 bytes, labels of
/// at most 63 not starting or ending with `-`.
fn hostname(name: &str) -> Result<String, CallError> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(invalid_input(format!(
            "hostname {name:?} is not a host name"
        )));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;
    use crate::catalog::Ulimit;
    use dockwire_core::ErrorCode;

    fn applied(
        role: Role,
        spec: &ContainerSpec,
    ) -> Result<(ContainerCreateBody, HostConfig), CallError> {
        let mut body = ContainerCreateBody::default();
        let mut host = HostConfig::default();
        apply(
            &Config::from_env(),
            &Caller::test_as(role),
            spec,
            &mut body,
            &mut host,
        )?;
        Ok((body, host))
    }

    #[test]
    fn every_sandbox_field_reaches_the_engines_create_body() {
        let mut spec = ContainerSpec::new("img", ["true"]);
        spec.memory = Some("64m".into());
        spec.memory_swap = Some("128m".into());
        spec.cpus = Some(0.5);
        spec.pids_limit = Some(32);
        spec.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft: 100,
            hard: 200,
        }];
        spec.shm_size = Some("16m".into());
        spec.read_only = true;
        spec.tmpfs.insert("/run".into(), "size=1m".into());
        spec.cap_add = vec!["sys_ptrace".into()];
        spec.cap_drop = vec!["NET_RAW".into()];
        spec.security_opt = vec!["no-new-privileges".into()];
        spec.hostname = Some("box.example".into());
        spec.init = Some(true);
        spec.stop_signal = Some("SIGTERM".into());
        spec.stop_timeout = Some(3);
        spec.restart = Some("on-failure:2".into());
        spec.log_opts.insert("max-size".into(), "1m".into());
        let (body, host) = applied(Role::Admin, &spec).unwrap();
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.memory_swap, Some(128 << 20));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.pids_limit, Some(32));
        assert_eq!(host.ulimits.unwrap()[0].hard, Some(200));
        assert_eq!(host.shm_size, Some(16 << 20));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.tmpfs.unwrap()["/run"], "size=1m");
        assert_eq!(host.cap_add, Some(vec!["SYS_PTRACE".to_owned()]));
        assert_eq!(host.cap_drop, Some(vec!["NET_RAW".to_owned()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges:true".to_owned()])
        );
        assert_eq!(host.init, Some(true));
        let restart = host.restart_policy.unwrap();
        assert_eq!(restart.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(restart.maximum_retry_count, Some(2));
        let log = host.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        assert_eq!(log.config.unwrap()["max-size"], "1048576");
        assert_eq!(body.hostname.as_deref(), Some("box.example"));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGTERM"));
        assert_eq!(body.stop_timeout, Some(3));
    }

    #[test]
    fn users_may_not_add_capabilities_or_turn_no_new_privileges_off() {
        let mut adds = ContainerSpec::new("img", ["true"]);
        adds.cap_add = vec!["NET_ADMIN".into()];
        let mut off = ContainerSpec::new("img", ["true"]);
        off.security_opt = vec!["no-new-privileges:false".into()];
        for spec in [&adds, &off] {
            let e = applied(Role::User, spec).unwrap_err();
            assert_eq!(e.code, ErrorCode::FORBIDDEN, "{spec:?}");
            assert!(applied(Role::Admin, spec).is_ok());
        }
        let mut drops = ContainerSpec::new("img", ["true"]);
        drops.cap_drop = vec!["chown".into()];
        drops.security_opt = vec!["no-new-privileges=true".into()];
        let (_, host) = applied(Role::User, &drops).unwrap();
        assert_eq!(host.cap_drop, Some(vec!["CHOWN".to_owned()]));
    }

    #[test]
    fn nonsense_sandbox_fields_are_invalid_input() {
        let cases: &[fn(&mut ContainerSpec)] = &[
            |s| s.shm_size = Some("big".into()),
            |s| s.security_opt = vec!["seccomp=unconfined".into()],
            |s| s.security_opt = vec!["apparmor:unconfined".into()],
            |s| s.cap_drop = vec!["NET RAW".into()],
            |s| s.cap_add = vec!["".into()],
            |s| s.restart = Some("sometimes".into()),
            |s| s.restart = Some("always:3".into()),
            |s| s.restart = Some("on-failure:-1".into()),
            |s| {
                s.restart = Some("always".into());
                s.auto_remove = true;
            },
            |s| s.hostname = Some("-bad".into()),
            |s| s.hostname = Some("a b".into()),
            |s| s.stop_signal = Some("SIGNOPE".into()),
            |s| s.stop_timeout = Some(-5),
            |s| {
                s.tmpfs.insert("relative".into(), String::new());
            },
            |s| {
                s.tmpfs.insert("/".into(), String::new());
            },
            |s| {
                s.ulimits = vec![Ulimit {
                    name: "nofile".into(),
                    soft: 10,
                    hard: 5,
                }]
            },
            |s| {
                s.ulimits = vec![Ulimit {
                    name: "as".into(),
                    soft: 1,
                    hard: 1,
                }]
            },
        ];
        for case in cases {
            let mut spec = ContainerSpec::new("img", ["true"]);
            case(&mut spec);
            let e = applied(Role::Admin, &spec).unwrap_err();
            assert_eq!(e.code, ErrorCode::INVALID_INPUT, "{spec:?}: {}", e.message);
        }
    }

    #[test]
    fn a_users_ulimit_above_the_servers_own_hard_limit_is_forbidden() {
        let ours = rlimit::getrlimit(Resource::Nofile)
            .maximum
            .expect("this process's open files are limited");
        let asking = |hard: u64| {
            let mut spec = ContainerSpec::new("img", ["true"]);
            let hard = i64::try_from(hard).unwrap();
            spec.ulimits = vec![Ulimit {
                name: "nofile".into(),
                soft: 64,
                hard,
            }];
            spec
        };
        let (_, host) = applied(Role::User, &asking(ours)).unwrap();
        assert_eq!(host.ulimits.unwrap()[0].hard, Some(ours as i64));
        let e = applied(Role::User, &asking(ours + 1)).unwrap_err();
        assert_eq!(e.code, ErrorCode::FORBIDDEN);
        assert_eq!(
            e.message,
            format!(
                "ulimit nofile hard limit {} is above this server's own ({ours})",
                ours + 1
            )
        );
        assert!(applied(Role::Admin, &asking(ours + 1)).is_ok());
    }
}
