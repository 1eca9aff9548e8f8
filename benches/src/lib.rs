//! What the bench binaries share: their error type, the entry point that
//! parses arguments and reports failures, and the statistics and machine
//! readings they print.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

/// Any error a bench run ends with.
pub type BoxError = Box<dyn Error + Send + Sync>;
/// A bench step's result.
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// A bench binary's `main`: parses the arguments (`Ok(None)` asks for the
/// usage text), runs, and turns a failure into one line prefixed with
/// `name` and exit status 1.
pub fn main<A>(
    name: &str,
    usage: &str,
    parse_args: impl FnOnce() -> std::result::Result<Option<A>, String>,
    run: impl FnOnce(&A) -> Result<()>,
) -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An error unless `got` bytes arrived where `want` were sent.
pub fn expect_bytes(what: &str, got: u64, want: u64) -> Result<()> {
    if got != want {
        return Err(format!("{what}: received {got} bytes, expected {want}").into());
    }
    Ok(())
}

/// Throughput of `bytes` moved in `time`.
pub fn mib_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / f64::from(1u32 << 20) / time.as_secs_f64()
}

/// The median (the mean of the middle two for an even count; NaN when
/// empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[mid],
        _ => (sorted[mid - 1] + sorted[mid]) / 2.0,
    }
}

/// The 1, 5 and 15 minute load averages, where Linux tells them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc` (fixed at 100
/// for user space, whatever the kernel's own tick).
const CLOCK_TICKS_PER_S: f64 = 100.0;

/// CPU time read from `/proc` at one moment, in seconds: what this
/// process's waited-for children used, what one other process (with all
/// its threads) used, and the machine's idle and total time over all its
/// cores. Two readings subtracted give what a run cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuReading {
    /// User and system time of this process's children that were waited
    /// for (`cutime` + `cstime`).
    pub children: f64,
    /// User and system time of the watched process (`utime` + `stime`).
    pub watched: f64,
    /// Idle and I/O-wait time of all cores.
    pub idle: f64,
    /// All time of all cores.
    pub total: f64,
}

impl CpuReading {
    /// Reads `/proc/self/stat`, `/proc/<watched>/stat` (when given) and
    /// `/proc/stat`.
    pub fn now(watched: Option<u32>) -> Result<CpuReading> {
        let own = process_ticks(&std::fs::read_to_string("/proc/self/stat")?)?;
        let watched = match watched {
            Some(pid) => process_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)?.0,
            None => 0,
        };
        let (idle, total) = machine_ticks(&std::fs::read_to_string("/proc/stat")?)?;
        let seconds = |ticks: u64| ticks as f64 / CLOCK_TICKS_PER_S;
        Ok(CpuReading {
            children: seconds(own.1),
            watched: seconds(watched),
            idle: seconds(idle),
            total: seconds(total),
        })
    }

    /// What was used between `earlier` and this reading.
    pub fn since(&self, earlier: &CpuReading) -> CpuReading {
        CpuReading {
            children: self.children - earlier.children,
            watched: self.watched - earlier.watched,
            idle: self.idle - earlier.idle,
            total: self.total - earlier.total,
        }
    }
}

/// A `/proc/<pid>/stat` line's own time (`utime` + `stime`) and its
/// waited-for children's (`cutime` + `cstime`), in clock ticks. The
/// command name in brackets may hold spaces, so the fields are counted
/// from its closing bracket.
fn process_ticks(stat: &str) -> Result<(u64, u64)> {
    let after_name = stat
        .rfind(')')
        .map(|at| &stat[at + 1..])
        .ok_or("a /proc stat line without its command name")?;
    // Fields 3 onwards: state is [0]; utime, stime, cutime and cstime are
    // fields 14 to 17, so [11] to [14].
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        let text = fields.get(i).ok_or("a short /proc stat line")?;
        // cutime and cstime are signed in the kernel's format.
        Ok(text.parse::<i64>()?.max(0) as u64)
    };
    Ok((field(11)? + field(12)?, field(13)? + field(14)?))
}

/// `/proc/stat`'s all-cores line as (idle + iowait, all) clock ticks.
fn machine_ticks(stat: &str) -> Result<(u64, u64)> {
    let line = stat
        .lines()
        .find(|line| line.starts_with("cpu "))
        .ok_or("/proc/stat without its cpu line")?;
    let ticks = line
        .split_whitespace()
        .skip(1)
        .map(str::parse::<u64>)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]:
    // guest time is already counted in user.
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    let total = ticks.iter().take(8).sum();
    Ok((idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_empty_inputs() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn process_ticks_count_fields_from_the_name_s_closing_bracket() {
        // A name with spaces and a bracket; utime 250, stime 50, cutime
        // 700, cstime 120.
        let stat = "4242 (a b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 700 120 20 0 3 0 1000 1000000 100";
        assert_eq!(process_ticks(stat).unwrap(), (300, 820));
        assert!(process_ticks("4242 (short) S 1 2").is_err());
        assert!(process_ticks("no name here").is_err());
    }

    #[test]
    fn machine_ticks_are_idle_and_iowait_of_the_first_eight_counters() {
        let stat = "cpu  100 5 50 800 20 3 7 15 40 0\ncpu0 50 2 25 400 10 1 3 7 20 0\n";
        assert_eq!(machine_ticks(stat).unwrap(), (820, 1000));
        assert!(machine_ticks("cpu0 1 2 3\n").is_err());
    }

    #[test]
    fn a_reading_taken_later_shows_this_process_s_children_s_time() {
        let before = CpuReading::now(Some(std::process::id())).unwrap();
        let burned = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(burned.success());
        let used = CpuReading::now(Some(std::process::id()))
            .unwrap()
            .since(&before);
        assert!(used.children > 0.0, "{used:?}");
        assert!(used.total >= used.idle && used.total > 0.0, "{used:?}");
    }
}
