//! `run`'s sandbox flags, as docker names them (`--memory`, `--cpus`,
//! `--pids-limit`, `--ulimit`, `--read-only`, `--tmpfs`, `--cap-drop`,
//! `--restart`, `--log-opt`, …), and `--env-file`, made into the
//! container spec's fields. Sizes and names are passed on as given: the
//! server checks them (one parser, and the same errors for every client).

use std::path::{Path, PathBuf};

use dockwire_docker::catalog::{ContainerSpec, Ulimit};

use crate::error::Failure;

/// The sandbox flags of `run`.
#[derive(clap::Args, Debug, Default)]
pub struct SandboxArgs {
    /// Memory limit (bytes, or 64m, 1g)
    #[arg(short = 'm', long, value_name = "SIZE")]
    memory: Option<String>,
    /// Memory plus swap; -1 for unlimited swap
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,
    /// Process limit (-1 for unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Ulimit options (NAME=SOFT[:HARD], e.g. nofile=1024:2048)
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    ulimits: Vec<String>,
    /// Size of /dev/shm
    #[arg(long, value_name = "SIZE")]
    shm_size: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    read_only: bool,
    /// Mount a tmpfs directory (PATH[:OPTIONS])
    #[arg(long, value_name = "PATH[:OPTS]")]
    tmpfs: Vec<String>,
    /// Add Linux capabilities (admins only)
    #[arg(long, value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long, value_name = "CAP")]
    cap_drop: Vec<String>,
    /// Security options (only no-new-privileges[:true|false])
    #[arg(long, value_name = "OPT")]
    security_opt: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "NAME")]
    hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// Signal to stop the container
    #[arg(long, value_name = "SIGNAL")]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long, value_name = "SECONDS")]
    stop_timeout: Option<i64>,
    /// Restart policy (no, always, unless-stopped, on-failure[:N])
    #[arg(long, value_name = "POLICY")]
    restart: Option<String>,
    /// Read in a file of environment variables (KEY=VAL lines, # comments, bare KEY takes this shell's value)
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Log driver options (max-size=SIZE, max-file=N)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    log_opts: Vec<String>,
}

impl SandboxArgs {
    /// Writes these flags into `spec`. The env files' variables come
    /// before `-e`'s, which win, as docker has them.
    pub fn apply(&self, spec: &mut ContainerSpec) -> Result<(), Failure> {
        spec.memory = self.memory.clone();
        spec.memory_swap = self.memory_swap.clone();
        spec.cpus = self.cpus;
        spec.pids_limit = self.pids_limit;
        spec.ulimits = self
            .ulimits
            .iter()
            .map(|u| ulimit(u))
            .collect::<Result<_, _>>()?;
        spec.shm_size = self.shm_size.clone();
        spec.read_only = self.read_only;
        spec.tmpfs = self
            .tmpfs
            .iter()
            .map(|t| match t.split_once(':') {
                Some((path, options)) => (path.to_owned(), options.to_owned()),
                None => (t.clone(), String::new()),
            })
            .collect();
        spec.cap_add = self.cap_add.clone();
        spec.cap_drop = self.cap_drop.clone();
        spec.security_opt = self.security_opt.clone();
        spec.hostname = self.hostname.clone();
        spec.init = self.init.then_some(true);
        spec.stop_signal = self.stop_signal.clone();
        spec.stop_timeout = self.stop_timeout;
        spec.restart = self.restart.clone();
        spec.log_opts = self
            .log_opts
            .iter()
            .map(|o| match o.split_once('=') {
                Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
                None => Err(Failure::local(
                    format!("--log-opt {o}"),
                    "expected KEY=VALUE",
                )),
            })
            .collect::<Result<_, _>>()?;
        let mut env = Vec::new();
        for file in &self.env_file {
            env.extend(env_file(file)?);
        }
        env.append(&mut spec.env);
        spec.env = env;
        Ok(())
    }
}

/// `NAME=SOFT[:HARD]`; a bare soft limit is the hard one too.
fn ulimit(text: &str) -> Result<Ulimit, Failure> {
    let bad = || Failure::local(format!("--ulimit {text}"), "expected NAME=SOFT[:HARD]");
    let (name, limits) = text.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    Ok(Ulimit {
        name: name.to_owned(),
        soft: soft.parse().map_err(|_| bad())?,
        hard: hard.parse().map_err(|_| bad())?,
    })
}

/// The variables of an env file, in docker's format: `KEY=VAL` lines
/// (the value as written, to the end of the line), blank lines and `#`
/// comments skipped, a bare `KEY` taking this shell's value (left out
/// when the shell has none).
fn env_file(path: &Path) -> Result<Vec<String>, Failure> {
    let what = || format!("--env-file {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| Failure::local(what(), e))?;
    parse_env_file(&text, |key| std::env::var(key).ok()).map_err(|e| Failure::local(what(), e))
}

fn parse_env_file(
    text: &str,
    shell: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut vars = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (line.trim_end(), None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "line {}: variable {key:?} has white space or is empty",
                n + 1
            ));
        }
        match value {
            Some(value) => vars.push(format!("{key}={value}")),
            None => vars.extend(shell(key).map(|v| format!("{key}={v}"))),
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_file_reads_as_dockers() {
        let text = "# a comment\n\nA=1\n  B=two words \nC=\nD\nE\nF=x=y\n";
        let shell = |k: &str| (k == "D").then(|| "from shell".to_owned());
        assert_eq!(
            parse_env_file(text, shell).unwrap(),
            ["A=1", "B=two words ", "C=", "D=from shell", "F=x=y"]
        );
        assert!(parse_env_file("BAD KEY=1\n", |_| None).is_err());
        assert!(parse_env_file("=1\n", |_| None).is_err());
    }

    #[test]
    fn a_ulimit_is_name_soft_and_hard() {
        let u = ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = ulimit("nproc=64").unwrap();
        assert_eq!((u.soft, u.hard), (64, 64));
        for bad in ["nofile", "nofile=x", "nofile=1:y"] {
            assert!(ulimit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_land_in_the_spec_env_files_before_dash_e() {
        let args = SandboxArgs {
            memory: Some("64m".into()),
            tmpfs: vec!["/run:size=1m".into(), "/tmp".into()],
            log_opts: vec!["max-size=1m".into()],
            init: true,
            ..SandboxArgs::default()
        };
        let mut spec = ContainerSpec::new("img", ["true"]);
        spec.env = vec!["A=dash-e".into()];
        args.apply(&mut spec).unwrap();
        assert_eq!(spec.memory.as_deref(), Some("64m"));
        assert_eq!(spec.tmpfs["/run"], "size=1m");
        assert_eq!(spec.tmpfs["/tmp"], "");
        assert_eq!(spec.log_opts["max-size"], "1m");
        assert_eq!(spec.init, Some(true));
        assert_eq!(spec.env, ["A=dash-e"]);
    }
}
