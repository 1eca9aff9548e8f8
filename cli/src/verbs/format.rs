//! How docker shows things: aligned tables, human sizes and durations,
//! short ids, quoted commands, port lists, and `KEY=VALUE` options.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use dockwire_docker::catalog::models::{PortSummary, PortSummaryTypeEnum};

use crate::error::Failure;

/// Columns of docker's list tables (`ps`, `images`, `network ls`…): at
/// least 10 wide, 3 spaces after the longest cell.
pub const LIST: (usize, usize) = (10, 3);
/// Columns of `docker top`: at least 20 wide, 3 spaces of padding.
pub const TOP: (usize, usize) = (20, 3);

/// Rows of cells aligned in columns, as Go's `tabwriter` aligns docker's
/// tables: every column but the last is as wide as its longest cell plus
/// the padding (and at least the minimum width); the last is not padded.
#[derive(Debug, Clone)]
pub struct Table {
    min_width: usize,
    padding: usize,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with `(minimum width, padding)`, such as [`LIST`].
    pub fn new((min_width, padding): (usize, usize)) -> Self {
        Table {
            min_width,
            padding,
            rows: Vec::new(),
        }
    }

    /// A table of docker's list kind whose first row is `header`.
    pub fn list(header: &[&str]) -> Self {
        let mut table = Table::new(LIST);
        table.row(header.iter().map(|h| (*h).to_owned()));
        table
    }

    /// Adds a row.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table, one line per row, each ending with a newline.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = Vec::new();
        for row in &self.rows {
            // The last cell of a row is not part of a column.
            let aligned = row.len().saturating_sub(1);
            for (i, cell) in row.iter().take(aligned).enumerate() {
                let width = (cell.chars().count() + self.padding).max(self.min_width);
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(width),
                    None => widths.push(width),
                }
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let last = row.len().saturating_sub(1);
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i < last {
                    let width = widths.get(i).copied().unwrap_or(self.min_width);
                    let fill = width.saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', fill));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// An id as docker shows it by default: without its `sha256:` (or other
/// algorithm) prefix, 12 characters.
pub fn short_id(id: &str) -> &str {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    match id.char_indices().nth(12) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// How long ago, as docker says it ("5 minutes", "About an hour"; Go's
/// `units.HumanDuration`).
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Rounded to the nearest hour, halves up.
    let hours = (d.as_nanos() + 1_800_000_000_000) / 3_600_000_000_000;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// "5 minutes ago" for a Unix time, seen at `now` (Unix seconds).
pub fn ago(unix: i64, now: i64) -> String {
    let secs = u64::try_from(now.saturating_sub(unix)).unwrap_or(0);
    format!("{} ago", human_duration(Duration::from_secs(secs)))
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A size in decimal units with `precision` significant digits, as docker
/// shows image sizes (3 digits: `1.98MB`) and byte counts (Go's
/// `units.HumanSizeWithPrecision`).
pub fn human_size(size: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    scaled(size, 1000.0, &UNITS, precision)
}

/// A size in binary units with 4 significant digits, as docker shows
/// memory (`1.5MiB`; Go's `units.BytesSize`).
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    scaled(size, 1024.0, &UNITS, 4)
}

fn scaled(mut size: f64, base: f64, units: &[&str], precision: usize) -> String {
    let mut unit = 0;
    while size >= base && unit + 1 < units.len() {
        size /= base;
        unit += 1;
    }
    format!(
        "{}{}",
        go_g(size, precision),
        units.get(unit).copied().unwrap_or("")
    )
}

/// Go's `%.<precision>g`: at most `precision` significant digits, no
/// trailing zeros, and the exponent form when the exponent is below -4 or
/// not below the precision (so 999.9 with 3 digits is `1e+03`, as docker
/// prints it).
pub fn go_g(value: f64, precision: usize) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if value == 0.0 {
        return "0".into();
    }
    let precision = precision.max(1);
    let sign = if value < 0.0 { "-" } else { "" };
    // Rust rounds correctly to `precision` significant digits.
    let rounded = format!("{:.*e}", precision - 1, value.abs());
    let (mantissa, exponent) = rounded.split_once('e').unwrap_or((&rounded, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let nd = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let dp = exponent + 1;
    let mut eprec = i64::try_from(precision).unwrap_or(i64::MAX);
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    let mut out = String::from(sign);
    if exponent < -4 || exponent >= eprec {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
        return out;
    }
    let digit = |i: i64| -> char {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.as_bytes().get(i))
            .map_or('0', |&b| char::from(b))
    };
    if dp <= 0 {
        out.push('0');
    } else {
        for i in 0..dp {
            out.push(digit(i));
        }
    }
    let decimals = (nd - dp).max(0);
    if decimals > 0 {
        out.push('.');
        for i in 0..decimals {
            out.push(digit(dp + i));
        }
    }
    out
}

/// At most `max` characters, the last one `…` when cut (docker's
/// `Ellipsis`, which shortens commands in `ps`).
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    match max {
        0 => String::new(),
        1 => s.chars().take(1).collect(),
        _ => {
            let mut cut: String = s.chars().take(max - 1).collect();
            cut.push('…');
            cut
        }
    }
}

/// A string in double quotes with Go's escapes (`strconv.Quote`), as
/// docker quotes commands in `ps`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let code = c as u32;
                if code <= 0xffff {
                    let _ = write!(out, "\\u{code:04x}");
                } else {
                    let _ = write!(out, "\\U{code:08x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Docker's "natural" order of names (Go's `sortorder.NaturalLess`):
/// runs of digits compare as numbers (`net2` before `net10`), digits
/// before other characters.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ca, cb) = (a[i], b[j]);
        match (ca.is_ascii_digit(), cb.is_ascii_digit()) {
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {
                if ca != cb {
                    return ca.cmp(&cb);
                }
                i += 1;
                j += 1;
            }
            (true, true) => {
                while a.get(i) == Some(&b'0') {
                    i += 1;
                }
                while b.get(j) == Some(&b'0') {
                    j += 1;
                }
                let (start_a, start_b) = (i, j);
                while a.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
                let (na, nb) = (&a[start_a..i], &b[start_b..j]);
                let order = na
                    .len()
                    .cmp(&nb.len())
                    .then_with(|| na.cmp(nb))
                    // Fewer leading zeros first.
                    .then_with(|| start_a.cmp(&start_b));
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
    (a.len() - i.min(a.len())).cmp(&(b.len() - j.min(b.len())))
}

/// `-f KEY=VALUE` options as the engine's filters; a key may repeat.
pub fn filters(pairs: &[String]) -> Result<HashMap<String, Vec<String>>, Failure> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Failure::local(
                format!("filter {pair}"),
                "bad format of filter (expected name=value)",
            ));
        };
        filters
            .entry(key.trim().to_ascii_lowercase())
            .or_default()
            .push(value.trim().to_owned());
    }
    Ok(filters)
}

/// `--label KEY=VALUE` options, split at the first `=` (a bare `KEY` is an
/// empty value, as docker takes it); a label without a key is refused.
pub fn labels(pairs: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    pairs
        .iter()
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key.is_empty() {
                return Err(Failure::local(
                    format!("--label {pair}"),
                    "a label needs a key",
                ));
            }
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// A container's ports as `docker ps` lists them: published ports as
/// `IP:PUBLIC->PRIVATE/PROTO`, consecutive ones as ranges.
pub fn ports(ports: &[PortSummary]) -> String {
    struct Group {
        key: String,
        first: u16,
        last: u16,
    }
    let mut sorted: Vec<&PortSummary> = ports.iter().collect();
    sorted.sort_by(|i, j| {
        i.private_port
            .cmp(&j.private_port)
            .then_with(|| i.ip.cmp(&j.ip))
            .then_with(|| i.public_port.cmp(&j.public_port))
            .then_with(|| proto(i).cmp(proto(j)))
    });
    let mut groups: Vec<Group> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for port in sorted {
        let current = port.private_port;
        let mut key = proto(port).to_owned();
        if let Some(ip) = port.ip.as_deref().filter(|ip| !ip.is_empty()) {
            let public = port.public_port.unwrap_or(0);
            if public != current {
                let host = if ip.contains(':') {
                    format!("[{ip}]:{public}")
                } else {
                    format!("{ip}:{public}")
                };
                mappings.push(format!("{host}->{current}/{}", proto(port)));
                continue;
            }
            key = format!("{ip}/{}", proto(port));
        }
        match groups.iter_mut().find(|g| g.key == key) {
            None => groups.push(Group {
                key,
                first: current,
                last: current,
            }),
            Some(group) if u32::from(current) == u32::from(group.last) + 1 => group.last = current,
            Some(group) => {
                result.push(port_group(&group.key, group.first, group.last));
                group.first = current;
                group.last = current;
            }
        }
    }
    result.extend(groups.iter().map(|g| port_group(&g.key, g.first, g.last)));
    result.extend(mappings);
    result.join(", ")
}

fn proto(port: &PortSummary) -> &'static str {
    match port.typ {
        Some(PortSummaryTypeEnum::UDP) => "udp",
        Some(PortSummaryTypeEnum::SCTP) => "sctp",
        _ => "tcp",
    }
}

fn port_group(key: &str, first: u16, last: u16) -> String {
    let (ip, proto) = key.rsplit_once('/').unwrap_or(("", key));
    let mut group = first.to_string();
    if first != last {
        let _ = write!(group, "-{last}");
    }
    if !ip.is_empty() {
        group = format!("{ip}:{group}->{group}");
    }
    format!("{group}/{proto}")
}

/// A value as `docker inspect` prints JSON: indented by four spaces, with
/// Go's escapes (U+2028 and U+2029 escaped too).
pub fn go_json(value: &impl serde::Serialize) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter::default());
    value.serialize(&mut ser)?;
    // Only UTF-8 was written.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

struct GoFormatter {
    pretty: serde_json::ser::PrettyFormatter<'static>,
}

impl Default for GoFormatter {
    fn default() -> Self {
        GoFormatter {
            pretty: serde_json::ser::PrettyFormatter::with_indent(b"    "),
        }
    }
}

impl serde_json::ser::Formatter for GoFormatter {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.pretty.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.pretty.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.end_object_value(w)
    }
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(['\u{2028}', '\u{2029}']) {
            let (plain, tail) = rest.split_at(at);
            w.write_all(plain.as_bytes())?;
            let mut chars = tail.chars();
            if let Some(c) = chars.next() {
                write!(w, "\\u{:04x}", c as u32)?;
            }
            rest = chars.as_str();
        }
        w.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_every_column_but_the_last_like_tabwriter() {
        let mut table = Table::list(&["CONTAINER ID", "IMAGE", "NAMES"]);
        table.row(["0123456789ab", "dockwire/testbox", "web"]);
        table.row(["ba9876543210", "x", ""]);
        assert_eq!(
            table.render(),
            "CONTAINER ID   IMAGE              NAMES\n\
             0123456789ab   dockwire/testbox   web\n\
             ba9876543210   x                  \n"
        );
    }

    #[test]
    fn short_columns_take_the_minimum_width() {
        let mut table = Table::list(&["DRIVER", "VOLUME NAME"]);
        table.row(["local", "data"]);
        assert_eq!(table.render(), "DRIVER    VOLUME NAME\nlocal     data\n");
        let mut top = Table::new(TOP);
        top.row(["PID", "CMD"]);
        top.row(["1", "sh"]);
        assert_eq!(
            top.render(),
            format!("PID{}CMD\n1{}sh\n", " ".repeat(17), " ".repeat(19))
        );
    }

    #[test]
    fn table_widths_count_characters_not_bytes() {
        let mut table = Table::new(LIST);
        table.row(["\"sh -c 'while true; …\"", "x"]);
        table.row(["a", "y"]);
        let rendered = table.render();
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines[1], format!("a{}y", " ".repeat(24)));
    }

    #[test]
    fn ids_lose_their_algorithm_and_are_cut_to_12() {
        assert_eq!(short_id("sha256:04a773cf701d0123456789"), "04a773cf701d");
        assert_eq!(short_id("7fa642e6bf0a0b857b9716bce6d6"), "7fa642e6bf0a");
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn durations_read_like_dockers() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(400)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(120)), "2 minutes");
        assert_eq!(human_duration(s(59 * 60 + 59)), "59 minutes");
        assert_eq!(human_duration(s(90 * 60 - 1)), "About an hour");
        assert_eq!(human_duration(s(90 * 60)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600)), "47 hours");
        assert_eq!(human_duration(s(48 * 3600)), "2 days");
        assert_eq!(human_duration(s(14 * 24 * 3600)), "2 weeks");
        assert_eq!(human_duration(s(60 * 24 * 3600)), "2 months");
        assert_eq!(human_duration(s(2 * 365 * 24 * 3600)), "2 years");
        assert_eq!(ago(1000, 1300), "5 minutes ago");
        assert_eq!(ago(1300, 1000), "Less than a second ago");
    }

    #[test]
    fn sizes_are_decimal_for_images_and_binary_for_memory() {
        assert_eq!(human_size(1_980_000.0, 3), "1.98MB");
        assert_eq!(human_size(1_984_512.0, 3), "1.98MB");
        assert_eq!(human_size(0.0, 3), "0B");
        assert_eq!(human_size(999.0, 3), "999B");
        assert_eq!(human_size(1000.0, 3), "1kB");
        assert_eq!(human_size(12_500.0, 3), "12.5kB");
        assert_eq!(human_size(2_560.0, 4), "2.56kB");
        // Go's %g switches to the exponent form once rounding reaches 1000.
        assert_eq!(human_size(999_900.0, 3), "1e+03kB");
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(
            bytes_size(24.0 * 1024.0 * 1024.0 * 1024.0 * 0.978),
            "23.47GiB"
        );
        assert_eq!(bytes_size(516.0 * 1024.0), "516KiB");
    }

    #[test]
    fn go_g_matches_go() {
        assert_eq!(go_g(100.0, 3), "100");
        assert_eq!(go_g(12.0, 3), "12");
        assert_eq!(go_g(0.000_012_3, 3), "1.23e-05");
        assert_eq!(go_g(0.001_23, 3), "0.00123");
        assert_eq!(go_g(1234.0, 3), "1.23e+03");
        assert_eq!(go_g(-2.5, 4), "-2.5");
    }

    #[test]
    fn commands_are_cut_at_20_characters_and_quoted_like_go() {
        let cmd = "sh -c 'while true; do echo out; done'";
        assert_eq!(go_quote(&ellipsis(cmd, 20)), "\"sh -c 'while true; …\"");
        assert_eq!(ellipsis("sleep 100", 20), "sleep 100");
        assert_eq!(ellipsis("12345678901234567890", 20), "12345678901234567890");
        assert_eq!(
            ellipsis("123456789012345678901", 20),
            "1234567890123456789…"
        );
        assert_eq!(go_quote("a\"b\\c\n\t\u{1}é"), "\"a\\\"b\\\\c\\n\\t\\x01é\"");
    }

    #[test]
    fn names_sort_naturally() {
        let mut names = vec!["net10", "net2", "bridge", "net1", "host", "none"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["bridge", "host", "net1", "net2", "net10", "none"]);
        assert_eq!(natural_cmp("a01", "a1"), Ordering::Greater);
        assert_eq!(natural_cmp("a1", "a1"), Ordering::Equal);
        assert_eq!(natural_cmp("a", "a1"), Ordering::Less);
    }

    #[test]
    fn filters_need_an_equals_sign_and_may_repeat() {
        let f = filters(&[
            "status=exited".into(),
            "Label=a=b".into(),
            "status=created".into(),
        ])
        .unwrap_or_default();
        assert_eq!(f["status"], ["exited", "created"]);
        assert_eq!(f["label"], ["a=b"]);
        let err = filters(&["status".into()]).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("dockwire: filter status: bad format of filter (expected name=value)")
        );
    }

    #[test]
    fn labels_without_a_value_are_empty() {
        let l = labels(&["a=1".into(), "b".into(), "c=x=y".into()]).unwrap();
        assert_eq!(l["a"], "1");
        assert_eq!(l["b"], "");
        assert_eq!(l["c"], "x=y");
    }

    #[test]
    fn ports_are_grouped_like_docker_ps() {
        let port = |ip: Option<&str>, private, public: Option<u16>| PortSummary {
            ip: ip.map(Into::into),
            private_port: private,
            public_port: public,
            typ: Some(PortSummaryTypeEnum::TCP),
        };
        assert_eq!(ports(&[]), "");
        assert_eq!(ports(&[port(None, 80, None)]), "80/tcp");
        assert_eq!(
            ports(&[
                port(None, 81, None),
                port(None, 80, None),
                port(None, 90, None)
            ]),
            "80-81/tcp, 90/tcp"
        );
        assert_eq!(
            ports(&[port(Some("0.0.0.0"), 80, Some(8080))]),
            "0.0.0.0:8080->80/tcp"
        );
        assert_eq!(
            ports(&[
                port(Some("0.0.0.0"), 80, Some(80)),
                port(Some("0.0.0.0"), 81, Some(81))
            ]),
            "0.0.0.0:80-81->80-81/tcp"
        );
        assert_eq!(
            ports(&[port(Some("::"), 80, Some(8080))]),
            "[::]:8080->80/tcp"
        );
    }

    #[test]
    fn json_is_indented_by_four_and_escaped_like_dockers() {
        let value = serde_json::json!({"Cmd": ["sh", "-c", "a && b > c"], "E": [], "N": "x\u{8}\u{1}\n\u{2028}"});
        assert_eq!(
            go_json(&vec![value]).unwrap_or_default(),
            "[\n    {\n        \"Cmd\": [\n            \"sh\",\n            \"-c\",\n            \"a && b > c\"\n        ],\n        \"E\": [],\n        \"N\": \"x\\b\\u0001\\n\\u2028\"\n    }\n]"
        );
    }
}
