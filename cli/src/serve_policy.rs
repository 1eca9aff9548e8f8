//! `serve`'s resource policy flags: the limits `user` peers' (and
//! admins') containers get when their callers give none, and the caps a
//! user cannot exceed (see `dockwire_docker::policy`). `0` turns a
//! default or a cap off.

use dockwire_docker::units::parse_size;
use dockwire_docker::{HostPorts, Policy};

use crate::error::Failure;

/// Billionths of a CPU in one.
const NANO: f64 = 1e9;

/// The policy flags of `serve`.
#[derive(clap::Args, Debug, Default)]
pub struct PolicyArgs {
    /// Memory a user's container gets when its caller gives none [default: 1g]
    #[arg(long, value_name = "SIZE")]
    user_memory: Option<String>,
    /// Most memory a user may ask (memory and swap: twice that) [default: 4g]
    #[arg(long, value_name = "SIZE")]
    user_memory_max: Option<String>,
    /// Process limit of a user's container when its caller gives none [default: 512]
    #[arg(long, value_name = "N")]
    user_pids: Option<i64>,
    /// Most processes a user may ask [default: 4096]
    #[arg(long, value_name = "N")]
    user_pids_max: Option<i64>,
    /// Most CPUs a user may ask [default: the engine's CPU count]
    #[arg(long, value_name = "N")]
    user_cpus_max: Option<f64>,
    /// Size at which a user's container's log is rotated, and the most a user may ask [default: 10m]
    #[arg(long, value_name = "SIZE")]
    user_log_max_size: Option<String>,
    /// Log files kept per user's container, and the most a user may ask [default: 3]
    #[arg(long, value_name = "N")]
    user_log_max_file: Option<i64>,
    /// Memory an admin's container gets when its caller gives none [default: none]
    #[arg(long, value_name = "SIZE")]
    admin_memory: Option<String>,
    /// Process limit of an admin's container when its caller gives none [default: none]
    #[arg(long, value_name = "N")]
    admin_pids: Option<i64>,
    /// Let users publish ports (-p), on 127.0.0.1 only, with host ports in this range or ones the engine picks [default: users publish none]
    #[arg(long, value_name = "FIRST-LAST")]
    user_publish_ports: Option<String>,
    /// Largest build context a user may send [default: 1g]
    #[arg(long, value_name = "SIZE")]
    user_build_context_max: Option<String>,
    /// Longest a user's build may run (`90s`, `10m`, `1h`) [default: 30m]
    #[arg(long, value_name = "DURATION", value_parser = dockwire_docker::lifetime::parse_lifetime)]
    user_build_timeout: Option<std::time::Duration>,
}

impl PolicyArgs {
    /// The policy these flags give, over the library's defaults; a
    /// nonsense value, or a default above its cap, is refused.
    /// `engine_cpus`, the engine's CPU count when it answered, is users'
    /// CPU cap unless `--user-cpus-max` gives one (the library's default
    /// is this host's count, which a remote engine's need not be).
    pub fn policy(&self, engine_cpus: Option<i64>) -> Result<Policy, Failure> {
        let mut policy = Policy::default();
        if let Some(cpus) = engine_cpus {
            policy.user.caps.nano_cpus = cpus.checked_mul(NANO as i64);
        }
        let (user, admin) = (&mut policy.user, &mut policy.admin);
        if let Some(m) = &self.user_memory {
            user.defaults.memory = positive(size("--user-memory", m)?);
        }
        if let Some(m) = &self.user_memory_max {
            let cap = positive(size("--user-memory-max", m)?);
            user.caps.memory = cap;
            user.caps.memory_swap = cap.and_then(|c| c.checked_mul(2));
        }
        if let Some(n) = self.user_pids {
            user.defaults.pids_limit = positive(count("--user-pids", n)?);
        }
        if let Some(n) = self.user_pids_max {
            user.caps.pids_limit = positive(count("--user-pids-max", n)?);
        }
        if let Some(cpus) = self.user_cpus_max {
            if !(0.0..=1e6).contains(&cpus) {
                return Err(Failure::local(
                    "serve",
                    "--user-cpus-max takes a number from 0 up",
                ));
            }
            user.caps.nano_cpus = positive((cpus * NANO).round() as i64);
        }
        if let Some(s) = &self.user_log_max_size {
            let bytes = positive(size("--user-log-max-size", s)?);
            (user.defaults.log_max_size, user.caps.log_max_size) = (bytes, bytes);
        }
        if let Some(n) = self.user_log_max_file {
            let files = positive(count("--user-log-max-file", n)?);
            (user.defaults.log_max_file, user.caps.log_max_file) = (files, files);
        }
        if let Some(m) = &self.admin_memory {
            admin.defaults.memory = positive(size("--admin-memory", m)?);
        }
        if let Some(n) = self.admin_pids {
            admin.defaults.pids_limit = positive(count("--admin-pids", n)?);
        }
        if let Some(range) = &self.user_publish_ports {
            policy.user_ports = Some(host_ports(range)?);
        }
        if let Some(text) = &self.user_build_context_max {
            let bytes = size("--user-build-context-max", text)?;
            // `0` is no cap, as for the other flags.
            policy.user_build.context_max = match u64::try_from(bytes) {
                Ok(0) | Err(_) => u64::MAX,
                Ok(n) => n,
            };
        }
        if let Some(timeout) = self.user_build_timeout {
            policy.user_build.timeout = timeout;
        }
        let over = |default: Option<i64>, cap: Option<i64>| matches!((default, cap), (Some(d), Some(c)) if d > c);
        if over(user.defaults.memory, user.caps.memory) {
            return Err(Failure::local(
                "serve",
                "--user-memory is above --user-memory-max",
            ));
        }
        if over(user.defaults.pids_limit, user.caps.pids_limit) {
            return Err(Failure::local(
                "serve",
                "--user-pids is above --user-pids-max",
            ));
        }
        Ok(policy)
    }
}

/// `FIRST-LAST`, ports from 1, `FIRST` ≤ `LAST`.
fn host_ports(text: &str) -> Result<HostPorts, Failure> {
    let bad = || {
        Failure::local(
            "serve --user-publish-ports",
            format!("expected FIRST-LAST, ports 1-65535, got {text:?}"),
        )
    };
    let (first, last) = text.split_once('-').ok_or_else(bad)?;
    let (first, last): (u16, u16) = (
        first.parse().map_err(|_| bad())?,
        last.parse().map_err(|_| bad())?,
    );
    if first == 0 || first > last {
        return Err(bad());
    }
    Ok(HostPorts { first, last })
}

fn size(flag: &str, text: &str) -> Result<i64, Failure> {
    parse_size(text).map_err(|e| Failure::local(format!("serve {flag}"), e))
}

fn count(flag: &str, n: i64) -> Result<i64, Failure> {
    match n {
        0.. => Ok(n),
        _ => Err(Failure::local(
            format!("serve {flag}"),
            "takes a count from 0 (none) up",
        )),
    }
}

/// `0` is no limit.
fn positive(n: i64) -> Option<i64> {
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_set_the_users_defaults_and_caps_and_zero_turns_one_off() {
        let args = PolicyArgs {
            user_memory: Some("256m".into()),
            user_memory_max: Some("1g".into()),
            user_pids: Some(0),
            user_cpus_max: Some(1.5),
            user_log_max_size: Some("1m".into()),
            admin_memory: Some("2g".into()),
            user_publish_ports: Some("20000-20099".into()),
            user_build_context_max: Some("64m".into()),
            user_build_timeout: Some(std::time::Duration::from_secs(90)),
            ..PolicyArgs::default()
        };
        let policy = args.policy(None).unwrap();
        assert_eq!(policy.user.defaults.memory, Some(256 << 20));
        assert_eq!(policy.user.caps.memory, Some(1 << 30));
        assert_eq!(policy.user.caps.memory_swap, Some(2 << 30));
        assert_eq!(policy.user.defaults.pids_limit, None);
        assert_eq!(policy.user.caps.pids_limit, Some(4096));
        assert_eq!(policy.user.caps.nano_cpus, Some(1_500_000_000));
        assert_eq!(policy.user.defaults.log_max_size, Some(1 << 20));
        assert_eq!(policy.user.caps.log_max_size, Some(1 << 20));
        assert_eq!(policy.admin.defaults.memory, Some(2 << 30));
        assert_eq!(policy.user_build.context_max, 64 << 20);
        assert_eq!(policy.user_build.timeout.as_secs(), 90);
        assert_eq!(policy.admin.caps.memory, None);
        assert_eq!(
            policy.user_ports,
            Some(HostPorts {
                first: 20000,
                last: 20099
            })
        );
        assert_eq!(PolicyArgs::default().policy(None).unwrap().user_ports, None);
        // The engine's CPU count, unless the flag gives a cap.
        let engines = PolicyArgs::default().policy(Some(64)).unwrap();
        assert_eq!(engines.user.caps.nano_cpus, Some(64_000_000_000));
        let flagged = args.policy(Some(64)).unwrap();
        assert_eq!(flagged.user.caps.nano_cpus, Some(1_500_000_000));
    }

    #[test]
    fn nonsense_or_a_default_above_its_cap_is_refused() {
        for args in [
            PolicyArgs {
                user_memory: Some("lots".into()),
                ..PolicyArgs::default()
            },
            PolicyArgs {
                user_memory: Some("8g".into()),
                ..PolicyArgs::default()
            },
            PolicyArgs {
                user_pids: Some(-1),
                ..PolicyArgs::default()
            },
            PolicyArgs {
                user_cpus_max: Some(-1.0),
                ..PolicyArgs::default()
            },
            PolicyArgs {
                user_publish_ports: Some("0-10".into()),
                ..PolicyArgs::default()
            },
            PolicyArgs {
                user_publish_ports: Some("30000-20000".into()),
                ..PolicyArgs::default()
            },
            PolicyArgs {
                user_publish_ports: Some("8080".into()),
                ..PolicyArgs::default()
            },
        ] {
            assert!(args.policy(None).is_err(), "{args:?}");
        }
    }
}
