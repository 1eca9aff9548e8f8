//! Reads the estimates the `codec` bench left in criterion's output
//! directory and prints each codec's speed as a ratio against its baseline
//! from the same run.
//!
//! ```text
//! cargo bench -p dockwire-benches --bench codec
//! cargo run --release -p dockwire-benches --bin ratios [-- --criterion-dir DIR]
//! ```
//!
//! The directory is, as criterion picks it: `--criterion-dir`, else
//! `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the
//! workspace's target directory (from `cargo metadata`) plus `criterion`.
//! Each benchmark's estimates are in `<group>/<function>/<parameter>/new/estimates.json`
//! (criterion makes each `/`-separated part of an id one directory and
//! replaces characters such as `/` inside a part with `_`).
//!
//! Exits with 1 if estimates are missing or unreadable, never because a
//! target is missed: benchmarks are reported, not asserted.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

use serde::Deserialize;

/// Payload sizes of the `chunk` and `memcpy` groups, as in `benches/codec.rs`.
const SIZES: [u64; 4] = [64, 4 << 10, 64 << 10, 1 << 20];

/// The issue's target applies from this size up.
const TARGET_FROM: u64 = 64 << 10;

/// The issue's target: chunk encode+decode takes at most this many times memcpy.
const TARGET_FACTOR: f64 = 2.0;

/// A full run of the bench takes about a minute and a half; estimates
/// written further apart than this likely come from different runs.
const SAME_RUN_SECS: u64 = 15 * 60;

/// The part of criterion's `estimates.json` read here; times are in ns.
#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    /// Present for linearly sampled benchmarks; criterion reports it then.
    slope: Option<Estimate>,
}

#[derive(Deserialize, Clone, Copy)]
struct Estimate {
    confidence_interval: Interval,
    point_estimate: f64,
}

#[derive(Deserialize, Clone, Copy)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

/// The part of criterion's `benchmark.json` read here.
#[derive(Deserialize)]
struct Benchmark {
    throughput: Option<Throughput>,
}

#[derive(Deserialize)]
enum Throughput {
    Bytes(u64),
    #[serde(other)]
    Other,
}

/// One benchmark's time per iteration (ns), as criterion prints it, and
/// the bytes it handles per iteration if it declared them.
#[derive(Clone, Copy)]
struct Time {
    point: f64,
    lower: f64,
    upper: f64,
    bytes: Option<u64>,
}

impl Time {
    fn from_estimates(e: &Estimates, bytes: Option<u64>) -> Time {
        let t = e.slope.unwrap_or(e.mean);
        Time {
            point: t.point_estimate,
            lower: t.confidence_interval.lower_bound,
            upper: t.confidence_interval.upper_bound,
            bytes,
        }
    }
}

/// `baseline / measured` with the range the two confidence intervals allow.
struct Ratio {
    point: f64,
    lower: f64,
    upper: f64,
}

impl Ratio {
    fn of(baseline: Time, measured: Time) -> Ratio {
        Ratio {
            point: baseline.point / measured.point,
            lower: baseline.lower / measured.upper,
            upper: baseline.upper / measured.lower,
        }
    }
}

/// Loads estimates, remembering what is missing and when files were written.
struct Reader {
    dir: PathBuf,
    missing: Vec<String>,
    written: Vec<SystemTime>,
}

impl Reader {
    /// The time of benchmark `id` (`group/function[/parameter]`).
    fn time(&mut self, id: &str) -> Option<Time> {
        let mut new = self.dir.clone();
        new.extend(id.split('/'));
        new.push("new");
        let path = new.join("estimates.json");
        let read = fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_slice::<Estimates>(&text).map_err(|e| e.to_string()));
        match read {
            Ok(estimates) => {
                if let Ok(modified) = fs::metadata(&path).and_then(|m| m.modified()) {
                    self.written.push(modified);
                }
                let bytes = fs::read(new.join("benchmark.json"))
                    .ok()
                    .and_then(|text| serde_json::from_slice::<Benchmark>(&text).ok())
                    .and_then(|b| match b.throughput {
                        Some(Throughput::Bytes(n)) => Some(n),
                        _ => None,
                    });
                Some(Time::from_estimates(&estimates, bytes))
            }
            Err(e) => {
                self.missing.push(format!("{} ({e})", path.display()));
                None
            }
        }
    }
}

fn criterion_dir() -> Result<PathBuf, String> {
    let mut args = env::args().skip(1);
    match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => {}
        (Some("--criterion-dir"), Some(dir), None) => return Ok(PathBuf::from(dir)),
        (Some("-h" | "--help"), None, _) => {
            return Err("usage: ratios [--criterion-dir DIR]\n\
                 run `cargo bench -p dockwire-benches --bench codec` first"
                .to_owned());
        }
        _ => return Err("usage: ratios [--criterion-dir DIR]; try --help".to_owned()),
    }
    // cargo runs benches from the package's directory, so criterion reads
    // relative paths from there.
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(home) = env::var_os("CRITERION_HOME") {
        return Ok(package.join(home));
    }
    if let Some(target) = env::var_os("CARGO_TARGET_DIR") {
        return Ok(package.join(target).join("criterion"));
    }
    Ok(cargo_target_dir(package).join("criterion"))
}

/// The workspace's target directory: `cargo metadata`'s answer, else
/// `target` next to the workspace's Cargo.toml.
fn cargo_target_dir(package: &Path) -> PathBuf {
    #[derive(Deserialize)]
    struct Metadata {
        target_directory: PathBuf,
    }
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(package.join("Cargo.toml"))
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| serde_json::from_slice::<Metadata>(&out.stdout).ok())
        .map(|m| m.target_directory)
        .unwrap_or_else(|| package.parent().unwrap_or(package).join("target"))
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

fn human_time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// Bytes per iteration at `time` ns per iteration, in GiB/s.
fn gib_per_s(bytes: u64, time: Time) -> String {
    format!(
        "{:.2} GiB/s",
        bytes as f64 / time.point * 1e9 / f64::from(1u32 << 30)
    )
}

fn ratio_text(r: &Ratio) -> String {
    format!("{:.2} ({:.2}–{:.2})", r.point, r.lower, r.upper)
}

fn main() -> ExitCode {
    let dir = match criterion_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("ratios: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reader = Reader {
        dir,
        missing: Vec::new(),
        written: Vec::new(),
    };

    let sizes: Vec<(u64, Option<Time>, Option<Time>)> = SIZES
        .iter()
        .map(|&size| {
            let chunk = reader.time(&format!("chunk/encode_decode/{size}"));
            let memcpy = reader.time(&format!("memcpy/copy/{size}"));
            (size, chunk, memcpy)
        })
        .collect();
    let frame = reader.time("frame/codec_roundtrip");
    let json = reader.time("frame/serde_json_roundtrip");

    if !reader.dir.is_dir() {
        eprintln!(
            "ratios: no criterion output at {}; run `cargo bench -p dockwire-benches --bench codec` \
             first, or point --criterion-dir at criterion's output directory",
            reader.dir.display()
        );
        return ExitCode::FAILURE;
    }
    if !reader.missing.is_empty() {
        eprintln!(
            "ratios: missing or unreadable criterion estimates in {}:",
            reader.dir.display()
        );
        for m in &reader.missing {
            eprintln!("  {m}");
        }
        eprintln!(
            "run `cargo bench -p dockwire-benches --bench codec` (without a filter) first, \
             or point --criterion-dir at criterion's output directory"
        );
        return ExitCode::FAILURE;
    }
    // The halves are optional: printed when present.
    let mut halves = Reader {
        dir: reader.dir.clone(),
        missing: Vec::new(),
        written: Vec::new(),
    };
    let frame_encode = halves.time("frame/codec_encode");
    let json_encode = halves.time("frame/serde_json_encode");
    let frame_decode = halves.time("frame/codec_decode");
    let json_decode = halves.time("frame/serde_json_decode");

    let mut out = String::new();
    let _ = writeln!(out, "criterion estimates: {}", reader.dir.display());
    let _ = writeln!(
        out,
        "times are criterion's point estimates per iteration; ratios are baseline time / codec time \
         (1.00 = as fast as the baseline, 0.50 = twice as slow), with the range the 95% confidence \
         intervals allow"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "chunk encode+decode vs memcpy; target at {} and above: chunk time <= {TARGET_FACTOR}x memcpy time (ratio >= {:.2})",
        human_size(TARGET_FROM),
        1.0 / TARGET_FACTOR
    );
    let _ = writeln!(
        out,
        "{:>8}  {:>10}  {:>11}  {:>10}  {:>11}  {:>18}  {:>6}",
        "size", "chunk", "chunk thr.", "memcpy", "memcpy thr.", "memcpy/chunk", "target"
    );
    let mut misses = Vec::new();
    for (size, chunk, memcpy) in sizes {
        let (Some(chunk), Some(memcpy)) = (chunk, memcpy) else {
            continue; // unreachable: missing estimates returned above
        };
        let ratio = Ratio::of(memcpy, chunk);
        let verdict = if size < TARGET_FROM {
            "n/a"
        } else if chunk.point <= TARGET_FACTOR * memcpy.point {
            "PASS"
        } else {
            misses.push(human_size(size));
            "MISS"
        };
        let _ = writeln!(
            out,
            "{:>8}  {:>10}  {:>11}  {:>10}  {:>11}  {:>18}  {:>6}",
            human_size(size),
            human_time(chunk.point),
            gib_per_s(size, chunk),
            human_time(memcpy.point),
            gib_per_s(size, memcpy),
            ratio_text(&ratio),
            verdict
        );
    }
    let _ = writeln!(
        out,
        "target (at {} and above, chunk decode+encode within {TARGET_FACTOR}x of memcpy): {}",
        human_size(TARGET_FROM),
        if misses.is_empty() {
            "PASS".to_owned()
        } else {
            format!("MISS at {}", misses.join(", "))
        }
    );

    let _ = writeln!(out);
    let size_of = |t: Option<Time>| {
        t.and_then(|t| t.bytes)
            .map_or_else(|| "?".to_owned(), |n| format!("{n} B"))
    };
    let _ = writeln!(
        out,
        "frame codec vs plain serde_json on the same output value (a container list): \
         frame {}, JSON of the output alone {}",
        size_of(frame),
        size_of(json)
    );
    let _ = writeln!(
        out,
        "{:>10}  {:>10}  {:>10}  {:>18}  {:>14}",
        "", "codec", "serde_json", "serde_json/codec", "codec overhead"
    );
    let rows = [
        ("round trip", frame, json),
        ("encode", frame_encode, json_encode),
        ("decode", frame_decode, json_decode),
    ];
    for (name, codec, json) in rows {
        let (Some(codec), Some(json)) = (codec, json) else {
            continue;
        };
        let ratio = Ratio::of(json, codec);
        let _ = writeln!(
            out,
            "{:>10}  {:>10}  {:>10}  {:>18}  {:>13.2}x",
            name,
            human_time(codec.point),
            human_time(json.point),
            ratio_text(&ratio),
            codec.point / json.point
        );
    }

    reader.written.extend(halves.written);
    let oldest = reader.written.iter().min();
    let newest = reader.written.iter().max();
    if let (Some(oldest), Some(newest)) = (oldest, newest) {
        let spread = newest.duration_since(*oldest).unwrap_or_default().as_secs();
        if spread > SAME_RUN_SECS {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "warning: these estimates were written {} minutes apart; they may come from \
                 different runs, and the ratios only mean something within one run",
                spread / 60
            );
        }
    }
    print!("{out}");
    ExitCode::SUCCESS
}
