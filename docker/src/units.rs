//! Sizes as Docker writes them (`64m`, `1.5g`, `512k`, `1024`): the one
//! parser of the spec's sizes, the server's policy flags and the CLI's.

use std::fmt;

/// A size that is not one: what it was and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a size (bytes, or a number with b, k, m, g, t or p: 64m, 1.5g)")]
#[non_exhaustive]
pub struct SizeError {
    /// The text given.
    pub given: String,
}

/// Bytes of `text`, as Docker's `RAMInBytes` reads it: a number, then
/// optionally a unit `k`, `m`, `g`, `t` or `p` (powers of 1024, any case,
/// an `i` and a `b` allowed after it: `64MiB`, `64mb`), or `b` for bytes.
/// Negative, empty, fractional bytes and overflowing sizes are refused.
pub fn parse_size(text: &str) -> Result<i64, SizeError> {
    let refused = || SizeError {
        given: text.to_owned(),
    };
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(refused());
    }
    let value: f64 = number.parse().map_err(|_| refused())?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let (scale, rest) = match unit.chars().next() {
        Some('k') => (1u64 << 10, &unit[1..]),
        Some('m') => (1 << 20, &unit[1..]),
        Some('g') => (1 << 30, &unit[1..]),
        Some('t') => (1 << 40, &unit[1..]),
        Some('p') => (1 << 50, &unit[1..]),
        _ => (1, unit.as_str()),
    };
    let letters_ok = match scale {
        1 => matches!(rest, "" | "b"),
        _ => matches!(rest, "" | "b" | "i" | "ib"),
    };
    let bytes = value * scale as f64;
    if !letters_ok || !bytes.is_finite() || bytes >= i64::MAX as f64 || bytes.fract() != 0.0 {
        return Err(refused());
    }
    Ok(bytes as i64)
}

/// `bytes` as Docker prints a size: the largest unit it is a whole
/// number of (`64m`, `1g`, `1536k`, `100`).
pub fn show_size(bytes: i64) -> String {
    struct Shown(i64);
    impl fmt::Display for Shown {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (unit, scale) in [
                ("p", 1i64 << 50),
                ("t", 1 << 40),
                ("g", 1 << 30),
                ("m", 1 << 20),
                ("k", 1 << 10),
            ] {
                if self.0 != 0 && self.0 % scale == 0 {
                    return write!(f, "{}{unit}", self.0 / scale);
                }
            }
            write!(f, "{}", self.0)
        }
    }
    Shown(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_reads_them() {
        for (text, bytes) in [
            ("0", 0),
            ("1024", 1024),
            ("100b", 100),
            ("512k", 512 << 10),
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("64mb", 64 << 20),
            ("64MiB", 64 << 20),
            ("64 m", 64 << 20),
            ("1g", 1 << 30),
            ("1.5g", 3 << 29),
            ("2t", 2 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn nonsense_sizes_are_refused() {
        for text in [
            "",
            "m",
            "-1",
            "-64m",
            "1.5",
            "0.5b",
            "1x",
            "1gg",
            "1bb",
            "1.g",
            ".5g",
            "1..5g",
            "64  m",
            "1e3",
            "99999999999p",
            "NaN",
            "inf",
            "1mbi",
            " 1m",
            "1m ",
        ] {
            assert!(parse_size(text).is_err(), "{text:?} was read as a size");
        }
    }

    #[test]
    fn sizes_are_shown_in_their_largest_whole_unit() {
        assert_eq!(show_size(1 << 30), "1g");
        assert_eq!(show_size(1536 << 10), "1536k");
        assert_eq!(show_size(10 << 20), "10m");
        assert_eq!(show_size(100), "100");
        assert_eq!(show_size(0), "0");
    }
}
