//! What a process holds, seen from outside through `/proc`: its resident
//! memory (now, and the kernel's high-water mark), its open file
//! descriptors and its threads; and a sampler that records them every few
//! milliseconds while a load runs, for the peak.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One look at a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Resident memory (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// The most resident memory it ever had (`VmHWM`), KiB.
    pub hwm_kib: u64,
    /// Of the resident memory, what is anonymous (`RssAnon`: the heap,
    /// stacks), KiB; the rest is mostly the executable's pages.
    pub anon_kib: u64,
    /// Open file descriptors (entries of `/proc/PID/fd`).
    pub fds: u64,
    /// Threads.
    pub threads: u64,
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB (anonymous {:.1} MiB), {} fds, {} threads",
            mib(self.rss_kib),
            mib(self.anon_kib),
            self.fds,
            self.threads
        )
    }
}

/// KiB as MiB, for reports.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// How `pid` stands now (failing the test if it is gone).
pub fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("process {pid} is gone ({e})"));
    let field = |name: &str| -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"));
        line[name.len()..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("cannot read {line:?}"))
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("cannot list the fds of {pid}: {e}"))
        .count() as u64;
    Usage {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        anon_kib: field("RssAnon:"),
        fds,
        threads: field("Threads:"),
    }
}

/// The soft and hard limits of open files of `pid`, from
/// `/proc/PID/limits` (`None`: unlimited).
pub fn open_file_limits(pid: u32) -> (Option<u64>, Option<u64>) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open-file limit in {limits}"));
    let values: Vec<Option<u64>> = line["Max open files".len()..]
        .split_whitespace()
        .take(2)
        .map(|v| v.parse().ok())
        .collect();
    (values[0], values[1])
}

/// Samples a process on a thread of its own until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Duration, Usage)>>,
}

impl Sampler {
    /// Samples `pid` every `every`.
    pub fn start(pid: u32, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut samples = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    samples.push((started.elapsed(), usage(pid)));
                    std::thread::sleep(every);
                }
                samples
            })
        };
        Sampler { stop, thread }
    }

    /// Stops it: every sample, with its time since the start.
    pub fn stop(self) -> Vec<(Duration, Usage)> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the sampler failed")
    }
}

/// The largest of each figure over `samples`.
pub fn peak<'a>(samples: impl IntoIterator<Item = &'a Usage>) -> Usage {
    samples.into_iter().fold(Usage::default(), |p, u| Usage {
        rss_kib: p.rss_kib.max(u.rss_kib),
        hwm_kib: p.hwm_kib.max(u.hwm_kib),
        anon_kib: p.anon_kib.max(u.anon_kib),
        fds: p.fds.max(u.fds),
        threads: p.threads.max(u.threads),
    })
}
