//! `--format`: Go templates, as docker's CLI runs them (gotmpl, a port of
//! Go's text/template). The list verbs run the template once per object
//! on a context of docker's field names (`.ID`, `.Names`, …, strings as
//! docker shows them); `table …` adds the header docker would (each field
//! its column's title) and aligns the `\t`-separated cells as docker's
//! tabwriter does. `inspect` runs it on the engine's object as is. Docker's
//! template functions are there: `json`, `join`, `split`, `title`,
//! `lower`, `upper`, `pad`, `truncate`.

use std::sync::Arc;

use gotmpl::{FuncMap, Template, TemplateError, Value};

use super::listing::Listing;
use crate::error::Failure;

/// A parsed `--format`.
pub struct Formatter {
    template: Template,
    /// The same template with the header functions (each returns its
    /// input), for a table's header.
    header: Template,
    table: bool,
}

impl Formatter {
    /// `text` as a list verb's `--format` takes it: `table TEMPLATE`, or
    /// a template; `\t` and `\n` written out as two characters are a tab
    /// and a newline, as docker reads them.
    pub fn list(text: &str) -> Result<Formatter, Failure> {
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        Formatter::parse(text, &body, table)
    }

    /// `text` as `inspect --format` takes it: a template, as given.
    pub fn inspect(text: &str) -> Result<Formatter, Failure> {
        Formatter::parse(text, text, false)
    }

    fn parse(given: &str, body: &str, table: bool) -> Result<Formatter, Failure> {
        let bad = |e: TemplateError| {
            Failure::local(
                format!("--format {given:?}"),
                format!("template parsing error: {e}"),
            )
        };
        Ok(Formatter {
            template: Template::new("")
                .funcs(functions(false))
                .parse(body)
                .map_err(bad)?,
            header: Template::new("")
                .funcs(functions(true))
                .parse(body)
                .map_err(bad)?,
            table,
        })
    }

    /// The template's text for `data` (a JSON value: objects are maps with
    /// their keys, as docker's fields).
    pub fn render(&self, data: &serde_json::Value) -> Result<String, Failure> {
        execute(&self.template, data)
    }

    /// A listing of `items`, each rendered; for a table, with the header
    /// rendered from `titles` (each field its column's title).
    pub fn listing(
        &self,
        items: &[serde_json::Value],
        titles: &serde_json::Value,
    ) -> Result<Listing, Failure> {
        let rendered = items
            .iter()
            .map(|item| self.render(item))
            .collect::<Result<Vec<_>, _>>()?;
        if !self.table {
            return Ok(Listing::Lines(rendered));
        }
        let header = execute(&self.header, titles)?;
        let cells = |line: &str| line.split('\t').map(str::to_owned).collect::<Vec<_>>();
        Ok(Listing::Table {
            header: cells(&header),
            rows: rendered.iter().map(|line| cells(line)).collect(),
        })
    }
}

fn execute(template: &Template, data: &serde_json::Value) -> Result<String, Failure> {
    let data = value(data);
    template
        .execute_to_string(&data)
        .map_err(|e| Failure::local("format", format!("template: {e}")))
}

/// A JSON value as the template's.
fn value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i),
            (None, Some(u), _) => Value::Uint(u),
            (None, None, f) => Value::Float(f.unwrap_or_default()),
        },
        serde_json::Value::String(s) => Value::String(s.as_str().into()),
        serde_json::Value::Array(items) => Value::List(items.iter().map(value).collect()),
        serde_json::Value::Object(map) => Value::Map(Arc::new(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), value(v)))
                .collect(),
        )),
    }
}

/// The template's value as JSON (for `json`).
fn json(value: &Value) -> serde_json::Value {
    match value {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::List(items) => items.iter().map(json).collect(),
        Value::Map(map) => map
            .iter()
            .map(|(k, v)| (k.to_string(), json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.to_string().into(),
    }
}

/// Docker's template functions; `header`: the header's, each returning
/// its first argument as it is.
fn functions(header: bool) -> FuncMap {
    type F = fn(&[Value]) -> gotmpl::Result<Value>;
    let docker: [(&str, F); 8] = [
        ("json", |a| {
            let v = arg(a, 0, "json")?;
            Ok(Value::String(
                serde_json::to_string(&json(v)).unwrap_or_default().into(),
            ))
        }),
        ("join", |a| {
            let (list, sep) = (arg(a, 0, "join")?, text(a, 1, "join")?);
            let Value::List(items) = list else {
                return Err(exec("join expects a list"));
            };
            let items: Vec<String> = items.iter().map(Value::to_string).collect();
            Ok(Value::String(items.join(&sep).into()))
        }),
        ("split", |a| {
            let (s, sep) = (text(a, 0, "split")?, text(a, 1, "split")?);
            let parts: Vec<Value> = match sep.is_empty() {
                true => s
                    .chars()
                    .map(|c| Value::String(c.to_string().into()))
                    .collect(),
                false => s
                    .split(sep.as_str())
                    .map(|p| Value::String(p.into()))
                    .collect(),
            };
            Ok(Value::List(parts.into()))
        }),
        ("title", |a| {
            let s = text(a, 0, "title")?;
            let mut out = String::with_capacity(s.len());
            let mut start = true;
            for c in s.chars() {
                match start && c.is_alphabetic() {
                    true => out.extend(c.to_uppercase()),
                    false => out.push(c),
                }
                start = !c.is_alphanumeric() && c != '\'';
            }
            Ok(Value::String(out.into()))
        }),
        ("lower", |a| {
            Ok(Value::String(text(a, 0, "lower")?.to_lowercase().into()))
        }),
        ("upper", |a| {
            Ok(Value::String(text(a, 0, "upper")?.to_uppercase().into()))
        }),
        ("pad", |a| {
            let s = text(a, 0, "pad")?;
            let count = |i: usize| a.get(i).and_then(Value::as_int).unwrap_or(0).max(0) as usize;
            let (before, after) = (" ".repeat(count(1)), " ".repeat(count(2)));
            Ok(Value::String(format!("{before}{s}{after}").into()))
        }),
        ("truncate", |a| {
            let s = text(a, 0, "truncate")?;
            let n = a.get(1).and_then(Value::as_int).unwrap_or(0).max(0) as usize;
            Ok(Value::String(s.chars().take(n).collect::<String>().into()))
        }),
    ];
    let mut map = FuncMap::new();
    for (name, f) in docker {
        let f: gotmpl::ValueFunc = match header {
            true => Arc::new(|a: &[Value]| Ok(a.first().cloned().unwrap_or(Value::Nil))),
            false => Arc::new(f),
        };
        map.insert(name.to_owned(), f);
    }
    map
}

fn arg<'a>(args: &'a [Value], at: usize, name: &str) -> gotmpl::Result<&'a Value> {
    args.get(at)
        .ok_or_else(|| exec(&format!("{name}: missing argument {}", at + 1)))
}

/// Argument `at` as text (a value's printed form).
fn text(args: &[Value], at: usize, name: &str) -> gotmpl::Result<String> {
    Ok(arg(args, at, name)?.to_string())
}

fn exec(message: &str) -> TemplateError {
    TemplateError::Exec(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_render_as_go_with_dockers_functions() {
        let data =
            json!({"Names": "web", "ID": "abc", "Labels": {"a": "1"}, "N": 3, "L": ["x", "y"]});
        for (template, want) in [
            ("{{.Names}}", "web"),
            ("{{.Names | upper}} {{lower \"AB\"}}", "WEB ab"),
            ("{{json .Labels}}", r#"{"a":"1"}"#),
            ("{{join .L \",\"}}", "x,y"),
            ("{{range split \"a:b\" \":\"}}[{{.}}]{{end}}", "[a][b]"),
            ("{{title \"hello world\"}}", "Hello World"),
            ("{{pad .ID 1 2}}|", " abc  |"),
            ("{{truncate .Names 2}}", "we"),
            ("{{.Missing}}", "<no value>"),
            ("{{.N}}", "3"),
        ] {
            let f = Formatter::inspect(template).unwrap();
            assert_eq!(f.render(&data).unwrap(), want, "{template}");
        }
    }

    #[test]
    fn a_table_has_docker_header_and_columns() {
        let f = Formatter::list("table {{.ID}}\\t{{.Names | upper}}").unwrap();
        let titles = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let items = [
            json!({"ID": "abc", "Names": "web"}),
            json!({"ID": "d", "Names": "db"}),
        ];
        let listing = f.listing(&items, &titles).unwrap();
        assert_eq!(
            listing.render(),
            "CONTAINER ID   NAMES\nabc            WEB\nd              DB\n"
        );
        let lines = Formatter::list("{{.ID}}: {{.Names}}").unwrap();
        assert_eq!(
            lines.listing(&items, &titles).unwrap().render(),
            "abc: web\nd: db\n"
        );
        assert!(Formatter::list("{{.ID").is_err());
    }
}
