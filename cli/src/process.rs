//! `run`, `exec` and `attach`: a process's stdio through a raw session,
//! and its exit code as ours.

use std::io::IsTerminal;

use dockwire_docker::DockerClient;
use dockwire_docker::catalog::{
    AttachInput, ContainerCreate, ContainerRef, ContainerSpec, ContainerStart, ExecInput,
    IMAGE_NOT_FOUND, ImagePull, Mount, ProcessStart, RunInput,
};
use dockwire_service::{ClientError, RawSession};
use futures::StreamExt;

use crate::error::{
    Context, EXIT_ATTACH_LOST, EXIT_CANNOT_INVOKE, EXIT_DOCKWIRE, EXIT_EXEC_LOST, EXIT_NOT_FOUND,
    Failure, Outcome,
};
use crate::placement::on_placed_host;
use crate::session::{self, Broken, Plan};
use crate::verbs::format::labels;

/// `dockwire run`: create a container, start it and attach to it.
#[derive(clap::Args, Debug)]
// `-h` is `--hostname`, as in docker's `run`.
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Run the container in the background and print its id
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// With -i on a server: how long to try to reconnect once the
    /// connection is lost (6s, 1m; 0 ends at the loss, as without sessions)
    #[arg(
        long,
        value_name = "DURATION",
        requires = "interactive",
        value_parser = reconnect_window,
        default_value = "6s"
    )]
    reconnect_for: std::time::Duration,
    #[command(flatten)]
    container: ContainerArgs,
}

/// `dockwire create`: create a container and print its id.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    container: ContainerArgs,
}

/// The container `run` and `create` make, with docker's flags.
#[derive(clap::Args, Debug)]
pub struct ContainerArgs {
    /// Placement on one of several hosts
    #[command(flatten)]
    place: crate::placement::PlaceArgs,
    /// Limits and hardening (docker's flags)
    #[command(flatten)]
    sandbox: Box<crate::sandbox::SandboxArgs>,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Keep STDIN open and send it to the container
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Set environment variables (K=V, or K to take this shell's value)
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Bind mount a host path or mount a named volume (SRC:DST[:ro|rw])
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    volumes: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// Connect the container to a network (none, host, bridge, NAME)
    #[arg(long, value_name = "MODE")]
    network: Option<String>,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set metadata on the container (K=V)
    #[arg(short = 'l', long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Overwrite the image's default entrypoint
    #[arg(long)]
    entrypoint: Option<String>,
    /// Lifetimes: --ttl, --idle-timeout.
    #[command(flatten)]
    lifetime: crate::verbs::containers::LifetimeArgs,
    /// Runtime to use for this container (runc, runsc for gVisor)
    #[arg(long, value_name = "RUNTIME")]
    runtime: Option<String>,
    /// Publish a container's port(s) to the host ([IP:][HOST_PORT:]CONTAINER_PORT[/PROTO])
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    publish: Vec<String>,
    /// The image to run
    image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `dockwire exec`: run a command in a running container.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Keep STDIN open and send it to the command
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Set environment variables (K=V, or K to take this shell's value)
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Detached mode: run the command on the server, print its process id
    /// (see `dockwire process`)
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// With -d: a tag shown by `process ls`
    #[arg(long, value_name = "TAG", requires = "detach")]
    tag: Option<String>,
    /// With -d: how much output the server keeps (bytes or 1m, 8m; default 1m)
    #[arg(long, value_name = "SIZE", requires = "detach", value_parser = buffer_size)]
    buffer: Option<u64>,
    /// With -i on a server: how long to try to reconnect once the
    /// connection is lost (6s, 1m; 0 ends at the loss, as without sessions)
    #[arg(
        long,
        value_name = "DURATION",
        requires = "interactive",
        value_parser = reconnect_window,
        default_value = "6s"
    )]
    reconnect_for: std::time::Duration,
    /// The container (name or id)
    pub(crate) container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `exec --buffer`: a size of at least one byte.
fn buffer_size(value: &str) -> Result<u64, String> {
    match dockwire_docker::units::parse_size(value) {
        Ok(n) if n > 0 => Ok(n.unsigned_abs()),
        _ => Err(format!("{value:?} is not a size (1m, 65536)")),
    }
}

/// `exec --reconnect-for`: a Go-like duration, or `0` for none.
fn reconnect_window(value: &str) -> Result<std::time::Duration, String> {
    match value {
        "0" => Ok(std::time::Duration::ZERO),
        _ => dockwire_docker::lifetime::parse_lifetime(value),
    }
}

/// `dockwire attach`: attach this terminal to a running container.
#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    no_stdin: bool,
    /// Proxy received signals to the process (non-TTY mode only)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sig_proxy: bool,
    /// With stdin, on a server: how long to try to reconnect once the
    /// connection is lost (6s, 1m; 0 ends at the loss, as without sessions)
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = reconnect_window,
        default_value = "6s"
    )]
    reconnect_for: std::time::Duration,
    /// The container (name or id)
    pub(crate) container: String,
}

impl RunArgs {
    /// Whether the host is to be chosen (`--place`).
    pub fn placed(&self) -> bool {
        self.container.place.placed()
    }
}

impl CreateArgs {
    /// Whether the host is to be chosen (`--place`).
    pub fn placed(&self) -> bool {
        self.container.place.placed()
    }
}

/// `dockwire run --place`: as [`run`], on the host placement chose.
pub async fn run_placed(global: &crate::Global, args: RunArgs) -> Outcome {
    let what = format!("run {}", args.container.image);
    let spec = spec(&args.container).map_err(|e| e.with_exit(EXIT_DOCKWIRE))?;
    let place = &args.container.place;
    if args.detach {
        let create = ContainerCreate(spec);
        let image = create.0.image.clone();
        let (_, docker, created) = on_placed_host(global, place, &image, |docker| {
            let (create, image) = (&create, &image);
            async move { pulling(&docker, image, || docker.query(create)).await }
        })
        .await
        .map_err(|e| e.with_exit(EXIT_DOCKWIRE))?;
        return started(&docker, &what, &created.id).await;
    }
    let plan = Plan {
        stdin: args.container.interactive,
        tty: args.container.tty,
        sig_proxy: !args.container.tty,
    };
    check_tty(&what, plan)?;
    let input = RunInput(spec);
    let image = input.0.image.clone();
    let attempt = |docker: DockerClient| {
        let (input, image) = (&input, &image);
        async move { pulling(&docker, image, || docker.open(input)).await }
    };
    let (_, _, session) = match on_placed_host(global, place, &image, attempt).await {
        Ok(placed) => placed,
        Err(failure) => return Err(failure.with_exit(EXIT_DOCKWIRE)),
    };
    finish(&what, session, plan, EXIT_DOCKWIRE).await
}

/// `dockwire create --place`: as [`create`], on the host placement chose.
pub async fn create_placed(global: &crate::Global, args: CreateArgs) -> Outcome {
    let spec = spec(&args.container).map_err(|e| e.with_exit(EXIT_DOCKWIRE))?;
    let create = ContainerCreate(spec);
    let image = create.0.image.clone();
    let (_, _, created) = on_placed_host(global, &args.container.place, &image, |docker| {
        let (create, image) = (&create, &image);
        async move { pulling(&docker, image, || docker.query(create)).await }
    })
    .await
    .map_err(|e| e.with_exit(EXIT_DOCKWIRE))?;
    println!("{}", created.id);
    Ok(0)
}

/// `dockwire run`.
///
/// With `resume` (the options to dial its server again; none for an
/// in-process engine), an interactive run reconnects by itself when its
/// connection dies and resumes where it was, as an `exec -i`.
pub async fn run(docker: &DockerClient, args: RunArgs, resume: Option<&crate::Global>) -> Outcome {
    let what = format!("run {}", args.container.image);
    let spec = spec(&args.container).map_err(|e| e.with_exit(EXIT_DOCKWIRE))?;
    if args.detach {
        return detach(docker, spec).await;
    }
    let plan = Plan {
        stdin: args.container.interactive,
        tty: args.container.tty,
        sig_proxy: !args.container.tty,
    };
    check_tty(&what, plan)?;
    let input = RunInput(spec);
    let session = pulling(docker, &input.0.image, || docker.open(&input))
        .await?
        .map_err(|e| start_failure(&what, e))?;
    let reconnect_for = args.reconnect_for;
    let resume = resume.filter(|_| !reconnect_for.is_zero());
    // A session that survives a lost connection (see `serve
    // --session-grace`) when the server made one of it.
    if let (true, Some(global), true) =
        (plan.stdin, resume, session.accepted["session"].is_string())
    {
        let ended =
            session::drive_resumable(session, docker, redial(global), plan, reconnect_for).await;
        return broken(&what, ended, EXIT_DOCKWIRE);
    }
    finish(&what, session, plan, EXIT_DOCKWIRE).await
}

/// Dials `global`'s host again, for a session to resume on.
fn redial<'a>(
    global: &'a crate::Global,
) -> impl Fn() -> futures::future::BoxFuture<'a, Result<DockerClient, ClientError>> + Clone + 'a {
    move || {
        Box::pin(async move {
            match crate::host::connect(global).await {
                Ok(connected) => Ok(connected.docker),
                Err(failure) => Err(ClientError::Connect(std::sync::Arc::new(
                    std::io::Error::other(failure.to_string()),
                ))),
            }
        })
    }
}

/// `dockwire exec`.
///
/// With `resume` (the options to dial its server again; none for an
/// in-process engine), an interactive exec reconnects by itself when its
/// connection dies and resumes where it was.
pub async fn exec(
    docker: &DockerClient,
    args: ExecArgs,
    resume: Option<&crate::Global>,
) -> Outcome {
    if args.detach {
        let mut input = ProcessStart::new(&args.container, &args.command);
        input.env = env(&args.env);
        input.workdir = args.workdir;
        input.user = args.user;
        input.tty = args.tty;
        input.stdin = args.interactive;
        input.tag = args.tag;
        input.buffer = args.buffer;
        return crate::detached::exec_detached(docker, input).await;
    }
    let what = format!("exec in {}", args.container);
    let plan = Plan {
        stdin: args.interactive,
        tty: args.tty,
        sig_proxy: false,
    };
    check_tty(&what, plan)?;
    let mut input = ExecInput::new(&args.container, &args.command);
    input.env = env(&args.env);
    input.workdir = args.workdir;
    input.user = args.user;
    input.tty = args.tty;
    input.stdin = args.interactive;
    let reconnect_for = args.reconnect_for;
    let resume = resume.filter(|_| !reconnect_for.is_zero());
    if let (true, Some(global)) = (args.interactive, resume) {
        // A session that survives a lost connection (see `serve
        // --session-grace`): it dials the same host again.
        // As docker exec: an error before the command starts is exit 1.
        let opened = docker.open(&input).await.context(|| what.clone())?;
        let ended =
            session::drive_resumable(opened, docker, redial(global), plan, reconnect_for).await;
        return broken(&what, ended, EXIT_EXEC_LOST);
    }
    // As docker exec: an error before the command starts is exit 1.
    let session = docker.open(&input).await.context(|| what.clone())?;
    finish(&what, session, plan, EXIT_EXEC_LOST).await
}

/// `dockwire attach`.
///
/// With `resume` (the options to dial its server again; none for an
/// in-process engine), an attach with stdin reconnects by itself when its
/// connection dies and resumes where it was, as an `exec -i`.
pub async fn attach(
    docker: &DockerClient,
    args: AttachArgs,
    resume: Option<&crate::Global>,
) -> Outcome {
    let what = format!("attach to {}", args.container);
    let input = AttachInput {
        id: args.container.clone(),
        stdin: !args.no_stdin,
    };
    let session = docker.open(&input).await.context(|| what.clone())?;
    let tty = session.accepted["tty"].as_bool().unwrap_or(false);
    let stdin = session.accepted["stdin"].as_bool().unwrap_or(false);
    let plan = Plan {
        stdin,
        tty,
        sig_proxy: args.sig_proxy && !tty,
    };
    check_tty(&what, plan)?;
    let reconnect_for = args.reconnect_for;
    let resume = resume.filter(|_| !reconnect_for.is_zero());
    // A session that survives a lost connection (see `serve
    // --session-grace`) when the server made one of it.
    if let (Some(global), true) = (resume, session.accepted["session"].is_string()) {
        let ended =
            session::drive_resumable(session, docker, redial(global), plan, reconnect_for).await;
        return broken(&what, ended, EXIT_ATTACH_LOST);
    }
    finish(&what, session, plan, EXIT_ATTACH_LOST).await
}

/// Drives an accepted session to its exit code; leaves with `lost` when
/// the connection to the server is lost on the way (each verb as docker's
/// does when its daemon dies; see [`EXIT_EXEC_LOST`]).
pub(crate) async fn finish(what: &str, session: RawSession, plan: Plan, lost: i32) -> Outcome {
    broken(what, session::drive(session, plan).await, lost)
}

/// A session's end as the verb's outcome.
fn broken(what: &str, ended: Result<i32, Broken>, lost: i32) -> Outcome {
    match ended {
        Ok(code) => Ok(code),
        Err(Broken::Stopped(signal)) => Ok(128 + signal),
        Err(Broken::Terminal(e)) => Err(Failure::local(
            what,
            format!("cannot set up the terminal: {e}"),
        )),
        Err(Broken::Call(e @ ClientError::Io(_))) => Err(Failure::call(what, e).with_exit(lost)),
        Err(Broken::Call(e)) => Err(Failure::call(what, e).with_exit(EXIT_DOCKWIRE)),
    }
}

/// As docker: `-it` needs a terminal on stdin.
pub(crate) fn check_tty(what: &str, plan: Plan) -> Result<(), Failure> {
    if plan.stdin && plan.tty && !std::io::stdin().is_terminal() {
        return Err(Failure::local(what, "the input device is not a TTY"));
    }
    Ok(())
}

/// A failed start, with docker's exit codes: 127 when the command was not
/// found, 126 when it could not be invoked, 125 otherwise.
fn start_failure(what: &str, error: ClientError) -> Failure {
    let failure = Failure::call(what, error);
    let exit = match failure.why.to_ascii_lowercase() {
        why if why.contains("executable file not found")
            || why.contains("no such file or directory") =>
        {
            EXIT_NOT_FOUND
        }
        why if why.contains("permission denied") => EXIT_CANNOT_INVOKE,
        _ => EXIT_DOCKWIRE,
    };
    failure.with_exit(exit)
}

/// `dockwire create`: create (pulling the image if it is missing), print
/// the id.
pub async fn create(docker: &DockerClient, args: CreateArgs) -> Outcome {
    let spec = spec(&args.container).map_err(|e| e.with_exit(EXIT_DOCKWIRE))?;
    let what = format!("create {}", spec.image);
    let id = make(docker, &what, spec).await?;
    println!("{id}");
    Ok(0)
}

/// Creates `spec`'s container, pulling its image if it is missing.
async fn make(docker: &DockerClient, what: &str, spec: ContainerSpec) -> Result<String, Failure> {
    let create = ContainerCreate(spec);
    let created = pulling(docker, &create.0.image, || docker.query(&create))
        .await?
        .map_err(|e| start_failure(what, e))?;
    Ok(created.id)
}

/// `run -d`: create and start, print the id.
async fn detach(docker: &DockerClient, spec: ContainerSpec) -> Outcome {
    let what = format!("run {}", spec.image);
    let id = make(docker, &what, spec).await?;
    started(docker, &what, &id).await
}

/// Starts the container `id` made, and prints its id (`run -d`).
async fn started(docker: &DockerClient, what: &str, id: &str) -> Outcome {
    docker
        .query(&ContainerStart(ContainerRef::new(id)))
        .await
        .map_err(|e| start_failure(what, e))?;
    println!("{id}");
    Ok(0)
}

/// `make`'s answer; when it is that `image` is missing, `image` is pulled
/// (as `docker run` does) and `make` asked again.
async fn pulling<T, F, Fut>(
    docker: &DockerClient,
    image: &str,
    make: F,
) -> Result<Result<T, ClientError>, Failure>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    match make().await {
        Err(ClientError::Remote(e)) if e.code == IMAGE_NOT_FOUND => {
            eprintln!("Unable to find image '{image}' locally");
            pull_quietly(docker, image)
                .await
                .map_err(|e| e.with_exit(EXIT_DOCKWIRE))?;
            Ok(make().await)
        }
        other => Ok(other),
    }
}

/// Pulls `image`, printing only the engine's final status, as `docker
/// run` does when the image is missing.
async fn pull_quietly(docker: &DockerClient, image: &str) -> Result<(), Failure> {
    let what = || format!("pull {image}");
    let mut progress = docker
        .subscribe(&ImagePull {
            image: image.to_owned(),
        })
        .await
        .context(what)?;
    let mut last = String::new();
    while let Some(item) = progress.next().await {
        let item = item.context(what)?;
        if item.id.is_none() {
            last = item.status;
        }
    }
    if !last.is_empty() {
        eprintln!("{last}");
    }
    Ok(())
}

/// The container `args` describe.
fn spec(args: &ContainerArgs) -> Result<ContainerSpec, Failure> {
    let mut spec = ContainerSpec::new(&args.image, &args.command);
    spec.env = env(&args.env);
    spec.mounts = args
        .volumes
        .iter()
        .map(|v| mount(v))
        .collect::<Result<_, _>>()?;
    spec.workdir = args.workdir.clone();
    spec.user = args.user.clone();
    spec.network = args.network.clone();
    spec.name = args.name.clone();
    spec.labels = labels(&args.labels)?;
    spec.entrypoint = args.entrypoint.as_ref().map(|e| vec![e.clone()]);
    spec.tty = args.tty;
    spec.stdin = args.interactive;
    spec.auto_remove = args.rm;
    args.lifetime.apply(&mut spec);
    args.sandbox.apply(&mut spec)?;
    spec.runtime = args.runtime.clone();
    for ports in &args.publish {
        spec.ports.extend(crate::publish::parse(ports)?);
    }
    Ok(spec)
}

/// `-e K=V` as given; `-e K` takes this shell's value, and is left out
/// when the shell has none (as docker does).
pub(crate) fn env(vars: &[String]) -> Vec<String> {
    vars.iter()
        .filter_map(|var| match var.contains('=') {
            true => Some(var.clone()),
            false => std::env::var(var)
                .ok()
                .map(|value| format!("{var}={value}")),
        })
        .collect()
}

/// `SRC:DST[:ro|rw]`.
fn mount(volume: &str) -> Result<Mount, Failure> {
    let bad = || Failure::local(format!("-v {volume}"), "expected SRC:DST[:ro|rw]");
    let parts: Vec<&str> = volume.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [source, target] => (*source, *target, false),
        [source, target, "ro"] => (*source, *target, true),
        [source, target, "rw"] => (*source, *target, false),
        _ => return Err(bad()),
    };
    if source.is_empty() || !target.starts_with('/') {
        return Err(bad());
    }
    Ok(Mount {
        source: source.to_owned(),
        target: target.to_owned(),
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_is_source_target_and_an_optional_mode() {
        let m = mount("/data:/in:ro").unwrap();
        assert_eq!(
            (m.source.as_str(), m.target.as_str(), m.read_only),
            ("/data", "/in", true)
        );
        let m = mount("cache:/var/cache").unwrap();
        assert_eq!(
            (m.source.as_str(), m.target.as_str(), m.read_only),
            ("cache", "/var/cache", false)
        );
        assert!(!mount("/a:/b:rw").unwrap().read_only);
        for bad in ["", "/a", "/a:b", ":/b", "/a:/b:rx", "/a:/b:ro:x"] {
            assert!(mount(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn env_without_a_value_takes_the_shells_or_is_left_out() {
        // SAFETY of the test: PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        let vars = env(&[
            "A=1".into(),
            "PATH".into(),
            "DOCKWIRE_TEST_SURELY_UNSET_VARIABLE".into(),
            "B=".into(),
        ]);
        assert_eq!(
            vars,
            vec!["A=1".to_owned(), format!("PATH={path}"), "B=".to_owned()]
        );
    }

    #[test]
    fn labels_split_at_the_first_equals_sign() {
        let l = labels(&["a=b=c".into(), "flag".into()]).unwrap();
        assert_eq!(l.get("a").map(String::as_str), Some("b=c"));
        assert_eq!(l.get("flag").map(String::as_str), Some(""));
        assert!(labels(&["=x".into()]).is_err());
    }

    #[test]
    fn start_failures_get_dockers_exit_codes() {
        let remote = |message: &str| {
            ClientError::Remote(dockwire_core::CallError::new(
                dockwire_docker::catalog::DOCKER_ERROR,
                message,
            ))
        };
        let code = |m| start_failure("run", remote(m)).exit;
        assert_eq!(
            code("exec: \"nope\": executable file not found in $PATH: unknown"),
            127
        );
        assert_eq!(
            code("exec: \"/x\": stat /x: no such file or directory: unknown"),
            127
        );
        assert_eq!(
            code("exec: \"/etc/passwd\": permission denied: unknown"),
            126
        );
        assert_eq!(code("conflict"), 125);
    }
}
