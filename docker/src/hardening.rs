//! What `user` peers' containers may not do, whatever they ask: gain
//! privileges through setuid files (`no-new-privileges`), use the
//! capabilities the operator drops (by default
//! [`DEFAULT_USER_CAP_DROP`](crate::config::DEFAULT_USER_CAP_DROP)), or
//! have `top` run `ps` with arguments of their choosing. Admins' are left
//! as Docker makes them.

use bollard::models::HostConfig;
use dockwire_core::CallError;

use crate::access::Caller;
use crate::config::Config;
use crate::error::invalid_input;

/// The security option that keeps a container's processes from gaining
/// privileges (setuid and file capabilities do nothing).
pub(crate) const NO_NEW_PRIVILEGES: &str = "no-new-privileges:true";

/// Hardens `host` for a container `caller` creates: for users, no new
/// privileges and the operator's capabilities dropped.
pub(crate) fn harden(config: &Config, caller: &Caller, host: &mut HostConfig) {
    if caller.is_admin() {
        return;
    }
    host.security_opt
        .get_or_insert_with(Vec::new)
        .push(NO_NEW_PRIVILEGES.to_owned());
    if !config.user_cap_drop.is_empty() {
        host.cap_drop
            .get_or_insert_with(Vec::new)
            .extend(config.user_cap_drop.iter().cloned());
    }
}

/// The `ps` arguments a user may give `top`: the usual listings, or `-o`
/// / `-eo` with a comma-separated list of [`PS_FIELDS`] (no headers, no
/// other options). Anything else is refused before the engine runs `ps`
/// on the host.
pub(crate) const PS_LISTINGS: &[&str] = &["-ef", "-e", "-f", "-A", "-eF", "-ely", "aux", "ux"];

/// The fields a user's `-o` list may name.
pub(crate) const PS_FIELDS: &[&str] = &[
    "pid", "ppid", "pgid", "sid", "user", "uid", "gid", "group", "comm", "args", "cmd", "etime",
    "etimes", "time", "stat", "state", "pcpu", "%cpu", "pmem", "%mem", "rss", "vsz", "tty", "nice",
    "ni", "pri", "lstart", "stime", "nlwp", "wchan",
];

/// Refuses `ps` arguments a user may not give (`INVALID_INPUT`); admins
/// may give any.
pub(crate) fn check_ps_args(caller: &Caller, args: Option<&str>) -> Result<(), CallError> {
    if caller.is_admin() {
        return Ok(());
    }
    let Some(args) = args else {
        return Ok(());
    };
    if safe_ps_args(args) {
        return Ok(());
    }
    Err(invalid_input(format!(
        "top's ps arguments are limited for users to one of {} or -o/-eo FIELD,… with fields among {}",
        PS_LISTINGS.join(" "),
        PS_FIELDS.join(",")
    )))
}

fn safe_ps_args(args: &str) -> bool {
    let words: Vec<&str> = args.split(' ').collect();
    match words.as_slice() {
        [listing] if PS_LISTINGS.contains(listing) => true,
        ["-o" | "-eo", fields] => safe_fields(fields),
        [joined] => joined
            .strip_prefix("-eo")
            .or_else(|| joined.strip_prefix("-o"))
            .is_some_and(safe_fields),
        _ => false,
    }
}

fn safe_fields(fields: &str) -> bool {
    fields.split(',').all(|f| PS_FIELDS.contains(&f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;

    #[test]
    fn users_containers_get_no_new_privileges_and_the_operators_cap_drop() {
        let config = Config::from_env();
        let mut host = HostConfig::default();
        harden(&config, &Caller::test_as(Role::User), &mut host);
        assert_eq!(host.security_opt, Some(vec![NO_NEW_PRIVILEGES.to_owned()]));
        assert_eq!(
            host.cap_drop,
            Some(vec!["NET_RAW".to_owned(), "MKNOD".to_owned()])
        );
        let mut admins = HostConfig::default();
        harden(&config, &Caller::test_as(Role::Admin), &mut admins);
        assert_eq!(admins, HostConfig::default());
    }

    #[test]
    fn users_ps_arguments_are_a_fixed_set() {
        let user = Caller::test_as(Role::User);
        for ok in [
            None,
            Some("-ef"),
            Some("aux"),
            Some("-o pid,comm"),
            Some("-eopid,args"),
        ] {
            assert!(check_ps_args(&user, ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "-eoetimes=PID,args",
            "-o pid=x",
            "-ef -w",
            "",
            "-e f",
            "--sort=pid",
            "-ef\0",
            "-o pid,,comm",
            "e",
        ] {
            let refused = check_ps_args(&user, Some(bad)).unwrap_err();
            assert_eq!(
                refused.code,
                dockwire_core::ErrorCode::INVALID_INPUT,
                "{bad:?}"
            );
        }
        assert!(check_ps_args(&Caller::test_as(Role::Admin), Some("-eoetimes=PID,args")).is_ok());
    }
}
