//! `dockwire`: serve a Docker engine over QUIC with mutual TLS, and drive
//! one (remote, or this machine's, in-process) with docker-like verbs.
//!
//! ```text
//! dockwire serve --listen 0.0.0.0:7447            # on the engine's machine
//! dockwire trust add <client fingerprint> --name ci
//! DOCKWIRE_HOST=quic://engine dockwire run --rm -it dockwire/testbox sh
//! dockwire ps -a                                  # no host: this machine's engine
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod context;
mod contexts;
mod detached;
mod error;
mod host;
mod placement;
mod process;
mod publish;
mod sandbox;
mod serve;
mod serve_policy;
mod session;
mod state;
mod term;
mod trust;
mod verbs;
mod writer;

use error::{Failure, Outcome};

/// Drive a Docker engine over one secure stream.
#[derive(Parser, Debug)]
#[command(name = "dockwire", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every verb takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// The server: quic://HOST[:PORT] or unix://PATH. Without one, dockwire
    /// serves this machine's engine in-process
    /// (DOCKWIRE_HOST, which overrides DOCKWIRE_CONTEXT and the current
    /// context)
    #[arg(short = 'H', long, global = true)]
    pub host: Option<String>,
    /// The named host (`dockwire context`) to use (DOCKWIRE_CONTEXT);
    /// verbs that list or watch take several, comma-separated
    #[arg(long, global = true, value_name = "NAME[,NAME…]")]
    pub context: Option<String>,
    /// Every context made with `dockwire context create` (verbs that list
    /// or watch)
    #[arg(long, global = true, conflicts_with_all = ["context", "host"])]
    pub all_contexts: bool,
    /// Where this user's identity, trusted peers and known servers live
    /// [default: $XDG_DATA_HOME/dockwire or ~/.local/share/dockwire]
    #[arg(long, env = "DOCKWIRE_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// The server's certificate fingerprint to insist on (otherwise the
    /// first one seen is remembered and insisted on later)
    #[arg(long, env = "DOCKWIRE_SERVER_FINGERPRINT", global = true)]
    pub server_fingerprint: Option<String>,
    /// How this end paces what it sends over QUIC (`serve` and clients
    /// each choose their own): bbr is much faster on a lossy or
    /// long-delay link (quinn marks it experimental)
    #[arg(
        long,
        env = "DOCKWIRE_CONGESTION",
        global = true,
        value_enum,
        default_value_t = Congestion::Cubic
    )]
    pub congestion: Congestion,
}

/// The QUIC congestion controllers to choose from.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Congestion {
    /// CUBIC, as TCP on Linux
    Cubic,
    /// BBR (experimental in quinn)
    Bbr,
    /// NewReno
    Newreno,
}

impl From<Congestion> for dockwire_service::quic::Congestion {
    fn from(c: Congestion) -> Self {
        match c {
            Congestion::Cubic => Self::Cubic,
            Congestion::Bbr => Self::Bbr,
            Congestion::Newreno => Self::NewReno,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create and run a new container from an image
    Run(process::RunArgs),
    /// Create a new container
    Create(process::CreateArgs),
    /// Execute a command in a running container
    Exec(process::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(process::AttachArgs),
    /// Manage detached processes (`exec -d`)
    #[command(subcommand)]
    Process(detached::ProcessCommand),
    #[command(flatten)]
    Docker(verbs::Verb),
    /// Serve this machine's Docker engine over QUIC (and a Unix socket)
    Serve(serve::ServeArgs),
    /// Print this user's identity fingerprint (made on first use)
    Id,
    /// Manage the clients this server admits
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Manage named hosts
    #[command(subcommand)]
    Context(context::ContextCommand),
}

/// jemalloc, configured (.cargo/config.toml) to give freed pages back to
/// the system within a second and to keep no per-thread caches. glibc's
/// malloc kept what calls freed in its arenas: after a thousand followed
/// log streams a server held 57 MB for 3.7 MB in use (RELIABILITY.md, load).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // As docker: a usage error is 125; --help and --version are 0.
            return ExitCode::from(if e.use_stderr() { 125 } else { 0 });
        }
    };
    // The server logs each call; a client only what went wrong.
    let default = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A server spreads its connections over the cores. A client's call is
    // one pipeline (the socket, QUIC, the session, stdio) whose tasks,
    // on one thread, hand each other their work without waking another.
    let built = match cli.command {
        Command::Serve(_) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match built {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("dockwire: cannot start the runtime: {e}");
            return ExitCode::from(125);
        }
    };
    let outcome = runtime.block_on(dispatch(cli));
    // A blocked read of the terminal must not hold the exit.
    runtime.shutdown_background();
    let code = match outcome {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("{failure}");
            failure.exit
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(if code < 0 { 1 } else { 255 }))
}

async fn dispatch(mut cli: Cli) -> Outcome {
    // `HOST/CONTAINER` references pick their host.
    let references = match &mut cli.command {
        Command::Exec(args) => vec![&mut args.container],
        Command::Attach(args) => vec![&mut args.container],
        Command::Docker(verb) => verbs::references(verb),
        _ => Vec::new(),
    };
    host::on_named_host(&mut cli.global, references)?;
    let global = &cli.global;
    match cli.command {
        Command::Run(args) if args.placed() => process::run_placed(global, args).await,
        Command::Create(args) if args.placed() => process::create_placed(global, args).await,
        Command::Run(args) => {
            let host = host::connect(global).await.map_err(|e| e.with_exit(125))?;
            let resume = host.embedded.is_none().then_some(global);
            settled(&host, process::run(&host.docker, args, resume).await).await
        }
        Command::Create(args) => {
            let host = host::connect(global).await.map_err(|e| e.with_exit(125))?;
            settled(&host, process::create(&host.docker, args).await).await
        }
        Command::Exec(args) => {
            let host = host::connect(global).await?;
            if args.detach && host.embedded.is_some() {
                return Err(detached::needs_a_server("exec -d"));
            }
            let resume = host.embedded.is_none().then_some(global);
            settled(&host, process::exec(&host.docker, args, resume).await).await
        }
        Command::Attach(args) => {
            let host = host::connect(global).await?;
            let resume = host.embedded.is_none().then_some(global);
            settled(&host, process::attach(&host.docker, args, resume).await).await
        }
        Command::Process(command) => {
            let host = host::connect(global).await?;
            if host.embedded.is_some() {
                return Err(detached::needs_a_server("process"));
            }
            settled(&host, detached::run(global, &host.docker, command).await).await
        }
        Command::Docker(verb) => {
            let targets = host::targets(global)?;
            if targets.len() > 1 || global.all_contexts {
                if !verbs::fan_out::fans_out(&verb) {
                    return Err(Failure::local(
                        "choose the host",
                        "this verb acts on one host: give --context one name",
                    ));
                }
                let fleet = host::fleet(global, &targets);
                return verbs::out::outcome(verbs::fan_out::run(&fleet, verb).await);
            }
            let host = host::connect(global).await?;
            settled(&host, verbs::run(&host.docker, verb).await).await
        }
        Command::Serve(args) => serve::serve(global, args).await,
        Command::Id => {
            let state = state::StateDir::open(global.state_dir.as_deref())?;
            println!("{}", state.identity()?.fingerprint());
            Ok(0)
        }
        Command::Trust(command) => trust::run(global, command),
        Command::Context(command) => context::run(global, command),
    }
}

/// `outcome`, once an in-process service has cleaned up, and with a
/// refused identity explained.
async fn settled(host: &host::Connected, outcome: Outcome) -> Outcome {
    host.settle().await;
    outcome.map_err(|failure| host.explain(failure))
}
