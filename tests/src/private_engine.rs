//! A private Docker engine for the tests that stop, crash and restart
//! one: a `dockerd` of its own (with the `containerd` it supervises) on
//! fresh directories, its own Unix socket and containerd namespaces, in a
//! network namespace of its own and with no container networking, so that
//! restarting it disturbs nobody who uses the shared engine.
//!
//! [`PrivateEngine::start`] checks that it can run one (as root, with
//! `dockerd` installed) and fails loudly when it cannot, starts the daemon
//! and loads the test image into it from the shared engine.
//! [`PrivateEngine::stop`], [`PrivateEngine::wait_stopped`] and
//! [`PrivateEngine::start_again`] restart it on the same directories.
//!
//! Dropping it removes its containers, stops the daemon, kills whatever
//! outlived it (containerd's shims and their containers, which survive the
//! daemon with `--live-restore` or a crash), unmounts what it left mounted
//! and removes its directories. A test process that died without dropping
//! it (killed, aborted) leaves a directory that the next start cleans up
//! the same way; its daemon was killed with it (`setpriv --pdeathsig`).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters as q;
use rustix::process::{Pid, Signal, kill_process};
use sha2::{Digest, Sha256};

use crate::docker::{IMAGE, engine, on_engine};

/// The directories of private engines: `<temp>/dockwire-engine-<pid>-<n>`,
/// named by the test process that made them.
const PREFIX: &str = "dockwire-engine-";

/// How long a daemon may take to answer after it is started, or to exit
/// after it is told to (it stops its containers first, 10 s at most each,
/// in parallel), on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// How an engine is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: the daemon's own shutdown, as `systemctl restart docker`
    /// does it.
    Term,
    /// SIGKILL: a crash.
    Kill,
}

/// What a private engine keeps across a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Containers {
    /// The default: stopping the daemon stops its containers.
    StopWithTheEngine,
    /// `--live-restore`: containers run on while the daemon is down, and
    /// the daemon takes them back when it starts again.
    LiveRestore,
}

/// A `dockerd` of the test's own; see the module's documentation.
pub struct PrivateEngine {
    dir: PathBuf,
    args: Vec<String>,
    dockerd: Option<Child>,
    started_in: Duration,
}

impl PrivateEngine {
    /// Starts a private engine holding the test image. Panics, saying
    /// what is missing, when this process is not root, `dockerd` is not
    /// installed or the shared engine (the image's source) is unreachable.
    pub fn start(containers: Containers) -> PrivateEngine {
        assert!(
            rustix::process::geteuid().is_root(),
            "a private Docker engine needs root: run these tests as root (CI does)"
        );
        assert!(
            on_path("dockerd"),
            "`dockerd` is not installed: run `scripts/engine` as root (it installs docker.io)"
        );
        assert!(
            on_path("unshare") && on_path("setpriv"),
            "the private engine is started with util-linux's `unshare` and `setpriv`: \
             install util-linux"
        );
        sweep_stale();
        // The same storage driver as the shared engine, which is known to
        // work on this machine's filesystems.
        let driver = on_engine(engine().info())
            .expect("the shared engine's info")
            .driver
            .unwrap_or_else(|| "overlay2".into());

        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(format!("{PREFIX}{id}"));
        // The daemon and containerd put Unix sockets under it, whose paths
        // the kernel limits to 107 bytes.
        assert!(
            dir.as_os_str().len() <= 60,
            "the temporary directory {} is too long for the private engine's Unix sockets: \
             point TMPDIR somewhere shorter",
            dir.display()
        );
        fs::create_dir_all(dir.join("data")).unwrap();
        fs::create_dir_all(dir.join("x")).unwrap();
        // Its own (empty) configuration: the shared engine's daemon.json,
        // if any, may name hosts or directories that are not ours.
        fs::write(dir.join("daemon.json"), "{}").unwrap();
        let path = |name: &str| dir.join(name).display().to_string();
        // Namespaces of its own in containerd, in case a system containerd
        // is found and used instead of a private one.
        let namespace = format!("dockwire-{id}");
        let mut args = vec![
            format!("--data-root={}", path("data")),
            format!("--exec-root={}", path("x")),
            format!("--pidfile={}", path("dockerd.pid")),
            format!("--config-file={}", path("daemon.json")),
            format!("--host=unix://{}", path("docker.sock")),
            format!("--storage-driver={driver}"),
            format!("--containerd-namespace={namespace}"),
            format!("--containerd-plugins-namespace={namespace}-plugins"),
            "--bridge=none".into(),
            "--iptables=false".into(),
            "--ip-masq=false".into(),
        ];
        if containers == Containers::LiveRestore {
            args.push("--live-restore".into());
        }
        let mut private = PrivateEngine {
            dir,
            args,
            dockerd: None,
            started_in: Duration::ZERO,
        };
        private.start_again();
        private.load_image();
        private
    }

    /// The engine's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// A bollard client of this engine, for checks behind dockwire's back.
    pub fn docker(&self) -> Docker {
        Docker::connect_with_unix(
            &self.socket().display().to_string(),
            30,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("a client of the private engine")
    }

    /// How long the last start took until the engine answered.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Whether the engine answers `/_ping` now.
    pub fn answers(&self) -> bool {
        ping(&self.socket())
    }

    /// Tells the daemon to stop (or kills it); returns at once, when the
    /// signal has been sent.
    pub fn stop(&mut self, how: Stop) -> Instant {
        let child = self.dockerd.as_ref().expect("the private engine runs");
        let signal = match how {
            Stop::Term => Signal::TERM,
            Stop::Kill => Signal::KILL,
        };
        signal_pid(child.id(), signal);
        Instant::now()
    }

    /// Waits until the daemon has exited: how long it took from `since`.
    pub fn wait_stopped(&mut self, since: Instant) -> Duration {
        let mut child = self.dockerd.take().expect("the private engine runs");
        loop {
            if child.try_wait().unwrap().is_some() {
                let took = since.elapsed();
                // A killed daemon's containerd dies with it (by its
                // parent-death signal), moments later. One that lives on is
                // adopted by the next daemon.
                let exited = Instant::now();
                while self.containerd_pid().is_some_and(alive)
                    && exited.elapsed() < Duration::from_secs(5)
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return took;
            }
            if since.elapsed() > PATIENCE {
                self.dockerd = Some(child);
                panic!(
                    "the private engine did not exit within {PATIENCE:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the daemon (again) on the same directories and waits until
    /// it answers: how long that took.
    pub fn start_again(&mut self) -> Duration {
        assert!(self.dockerd.is_none(), "the private engine already runs");
        // A containerd that died with a killed daemon stays a zombie until
        // init reaps it; the daemon would take it for a live one by its pid
        // file, adopt it, and wait for its socket in vain.
        if self.containerd_pid().is_some_and(|pid| !alive(pid)) {
            let _ = fs::remove_file(self.containerd_pid_file());
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .unwrap();
        // setpriv: the daemon is killed when the thread that started it
        // ends, so a test process that dies without dropping this leaves
        // no daemon running (setting that between fork and exec ourselves
        // would need unsafe code). unshare: the daemon has a network
        // namespace of its own, because with `--bridge=none` it deletes
        // the host's `docker0`, the shared engine's bridge. Each execs the
        // next: the child's pid is the daemon's.
        let shared_bridge = Path::new("/sys/class/net/docker0");
        let bridged = shared_bridge.exists();
        let started = Instant::now();
        let child = Command::new("setpriv")
            .args([
                "--pdeathsig",
                "KILL",
                "--",
                "unshare",
                "--net",
                "--",
                "dockerd",
            ])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        self.dockerd = Some(child);
        loop {
            if self.answers() {
                self.started_in = started.elapsed();
                assert!(
                    !bridged || shared_bridge.exists(),
                    "the private engine deleted the shared engine's docker0"
                );
                return self.started_in;
            }
            let child = self.dockerd.as_mut().expect("just started");
            if let Some(status) = child.try_wait().unwrap() {
                self.dockerd = None;
                panic!(
                    "the private engine exited ({status}) before answering:\n{}",
                    self.log_tail()
                );
            }
            if started.elapsed() > PATIENCE {
                panic!(
                    "the private engine did not answer within {PATIENCE:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn containerd_pid_file(&self) -> PathBuf {
        self.dir.join("x").join("containerd").join("containerd.pid")
    }

    /// The pid of the containerd the daemon started, by its pid file.
    fn containerd_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.containerd_pid_file()).ok()?;
        text.trim().parse().ok()
    }

    /// The end of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `docker save` from the shared engine, `docker load` into this one.
    fn load_image(&self) {
        let mut load = Command::new(docker_cli())
            .arg(format!("--host=unix://{}", self.socket().display()))
            .args(["load", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the docker command runs");
        let mut stdin = load.stdin.take().expect("piped");
        stdin.write_all(saved_image()).unwrap();
        drop(stdin);
        let out = load.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "loading {IMAGE} into the private engine failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Force-removes every container, while the engine answers: the
    /// engine then kills them, unmounts their filesystems and removes
    /// their cgroups itself.
    fn remove_containers(&self) {
        let docker = self.docker();
        let options = q::ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let Ok(containers) = on_engine(docker.list_containers(Some(options))) else {
            return;
        };
        for id in containers.into_iter().filter_map(|c| c.id) {
            let options = q::RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            if let Err(e) = on_engine(docker.remove_container(&id, Some(options))) {
                eprintln!("private engine: cannot remove container {id}: {e}");
            }
        }
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.dockerd.is_some() && self.answers() {
            self.remove_containers();
        }
        if let Some(mut child) = self.dockerd.take() {
            signal_pid(child.id(), Signal::TERM);
            let since = Instant::now();
            while matches!(child.try_wait(), Ok(None)) && since.elapsed() < PATIENCE / 3 {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        clean_up(&self.dir);
    }
}

/// Cleans up the directories of private engines whose test process is
/// gone.
fn sweep_stale() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        // A live process's engines are its own to clean.
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        eprintln!(
            "private engine: cleaning up {}, left by a test process that died",
            entry.path().display()
        );
        clean_up(&entry.path());
    }
}

/// Kills every process still working for the private engine in `dir`,
/// unmounts what it left mounted there and removes it. Never panics: it
/// runs in `drop`.
fn clean_up(dir: &Path) {
    // The containers' processes first (they are children of the shims),
    // as runc recorded them.
    let mut cgroups = Vec::new();
    for state in runc_states(dir) {
        let id = state["id"].as_str().unwrap_or_default().to_owned();
        if let Some(pid) = state["init_process_pid"].as_u64() {
            // Only the process that still is that container's: the pid may
            // have been reused since.
            let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            if !id.is_empty() && cgroup.contains(&id) {
                signal_pid(pid as u32, Signal::KILL);
            }
        }
        if let Some(paths) = state["cgroup_paths"].as_object() {
            cgroups.extend(paths.values().filter_map(|p| p.as_str()).map(PathBuf::from));
        }
    }
    // Then the daemon, containerd and the shims: each names a path below
    // the directory on its command line (with the slash: engine `-1` is
    // not engine `-10`).
    let needle = format!("{}/", dir.display());
    let mut left = Vec::new();
    let mut sockets = Vec::new();
    for (pid, args) in processes_naming(&needle) {
        signal_pid(pid, Signal::KILL);
        left.push(pid);
        sockets.extend(shim_socket(&args));
    }
    let since = Instant::now();
    while !left.is_empty() && since.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
        left.retain(|&pid| alive(pid));
    }
    if !left.is_empty() {
        eprintln!("private engine: processes {left:?} outlived SIGKILL");
    }
    for cgroup in cgroups {
        let _ = fs::remove_dir(cgroup);
    }
    // A killed shim leaves its socket behind, outside the directory.
    for socket in sockets {
        let _ = fs::remove_file(socket);
    }
    // The data root is bind-mounted on itself, container filesystems and
    // network namespaces are mounted below: the deepest first, and again
    // for mounts stacked on one another.
    for _ in 0..10 {
        let mut mounts = mounts_under(dir);
        if mounts.is_empty() {
            break;
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in mounts {
            if let Err(e) = rustix::mount::unmount(&mount, rustix::mount::UnmountFlags::DETACH) {
                eprintln!("private engine: cannot unmount {mount}: {e}");
            }
        }
    }
    if let Err(e) = fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("private engine: cannot remove {}: {e}", dir.display());
        }
    }
}

/// runc's `state.json` of every container the engine in `dir` ran.
fn runc_states(dir: &Path) -> Vec<serde_json::Value> {
    let mut states = Vec::new();
    let Ok(namespaces) = fs::read_dir(dir.join("x").join("runtime-runc")) else {
        return states;
    };
    for namespace in namespaces.flatten() {
        let Ok(containers) = fs::read_dir(namespace.path()) else {
            continue;
        };
        for container in containers.flatten() {
            let Ok(text) = fs::read_to_string(container.path().join("state.json")) else {
                continue;
            };
            if let Ok(state) = serde_json::from_str(&text) {
                states.push(state);
            }
        }
    }
    states
}

/// The processes whose command line contains `needle`, with their
/// arguments.
fn processes_naming(needle: &str) -> Vec<(u32, Vec<String>)> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains(needle).then(|| {
                let args = cmdline.split('\0').map(str::to_owned).collect();
                (pid, args)
            })
        })
        .collect()
}

/// The socket of a containerd shim run with `args`: containerd 1.6 names
/// it by the SHA-256 of `<containerd's address>/<namespace>/<container>`,
/// in its state directory.
fn shim_socket(args: &[String]) -> Option<PathBuf> {
    let arg = |name: &str| {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1).map(String::as_str)
    };
    let (namespace, id, address) = (arg("-namespace")?, arg("-id")?, arg("-address")?);
    let hash = Sha256::digest(format!("{address}/{namespace}/{id}"));
    Some(Path::new("/run/containerd/s").join(format!("{hash:x}")))
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    !status
        .lines()
        .any(|l| l.starts_with("State:") && l.contains('Z'))
}

/// The mount points at or below `dir`, from this process's mount table.
fn mounts_under(dir: &Path) -> Vec<String> {
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = dir.display().to_string();
    let below = format!("{dir}/");
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| *point == dir || point.starts_with(&below))
        .map(str::to_owned)
        .collect()
}

fn signal_pid(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, signal);
    }
}

/// `GET /_ping` over the Unix socket: whether the engine answers `OK`.
fn ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let limit = Some(Duration::from_secs(5));
    let _ = stream.set_read_timeout(limit);
    let _ = stream.set_write_timeout(limit);
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().is_some_and(|l| l.contains(" 200 ")) && answer.ends_with("OK")
}

/// The test image, saved from the shared engine once per process.
fn saved_image() -> &'static [u8] {
    static SAVED: OnceLock<Vec<u8>> = OnceLock::new();
    SAVED.get_or_init(|| {
        let out = Command::new(docker_cli())
            .args(["save", IMAGE])
            .output()
            .expect("the docker command runs");
        assert!(
            out.status.success(),
            "`docker save {IMAGE}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    })
}

/// The Debian client, which matches the Debian engine, before any other
/// `docker` on the path.
fn docker_cli() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}
