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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_empty_inputs() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
