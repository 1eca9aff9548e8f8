//! Named hosts (`dockwire context`), as docker's contexts: each a server
//! (`quic://…` or `unix://…`) with the fingerprint to insist on and a
//! description, one JSON file per context in the state directory's
//! `contexts/`, and the current one's name in `contexts/current`. The
//! context `default` is built in: this machine's engine, served
//! in-process; it cannot be made, changed or removed.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Failure;
use crate::state::{read_if_exists, write_private};

/// The built-in context: this machine's engine, in-process.
pub const DEFAULT: &str = "default";

/// One named host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Context {
    /// Its name.
    pub name: String,
    /// What it is, for people.
    #[serde(default)]
    pub description: String,
    /// The server: `quic://HOST[:PORT]` or `unix://PATH`; empty for
    /// `default`.
    #[serde(default)]
    pub host: String,
    /// The server's fingerprint to insist on; without one, the first seen
    /// is remembered in known-servers, as with `--host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_fingerprint: Option<String>,
}

impl Context {
    /// The built-in `default`.
    pub fn default_context() -> Context {
        Context {
            name: DEFAULT.into(),
            description: "This machine's engine, served in-process".into(),
            host: String::new(),
            server_fingerprint: None,
        }
    }
}

/// The contexts of a state directory.
#[derive(Clone, Debug)]
pub struct Contexts {
    dir: PathBuf,
}

impl Contexts {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Contexts { dir }
    }

    /// Every context, `default` first, then by name.
    pub fn list(&self) -> Result<Vec<Context>, Failure> {
        let mut names = Vec::new();
        match fs::read_dir(&self.dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|e| self.failure("read", e))?;
                    let file = entry.file_name();
                    if let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) {
                        names.push(name.to_owned());
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.failure("read", e)),
        }
        names.sort();
        let mut contexts = vec![Context::default_context()];
        for name in names {
            if let Some(context) = self.get(&name)? {
                contexts.push(context);
            }
        }
        Ok(contexts)
    }

    /// The context named `name`.
    pub fn get(&self, name: &str) -> Result<Option<Context>, Failure> {
        if name == DEFAULT {
            return Ok(Some(Context::default_context()));
        }
        check_name(name)?;
        let path = self.file(name);
        let what = || format!("read {}", path.display());
        let Some(text) = read_if_exists(&path, what)? else {
            return Ok(None);
        };
        let context: Context = serde_json::from_str(&text)
            .map_err(|e| Failure::local(format!("read {}", path.display()), e))?;
        Ok(Some(context))
    }

    /// The context named `name`, or a failure saying it does not exist.
    pub fn must_get(&self, name: &str) -> Result<Context, Failure> {
        self.get(name)?.ok_or_else(|| {
            Failure::local(
                format!("context {name}"),
                format!("context \"{name}\" does not exist"),
            )
        })
    }

    /// Saves `context`, new (`create`) or replacing one (`update`).
    pub fn save(&self, context: &Context, new: bool) -> Result<(), Failure> {
        if context.name == DEFAULT {
            return Err(Failure::local(
                format!("context {DEFAULT}"),
                "the default context cannot be made or changed",
            ));
        }
        check_name(&context.name)?;
        let exists = self.get(&context.name)?.is_some();
        if new && exists {
            return Err(Failure::local(
                format!("context create {}", context.name),
                format!("context \"{}\" already exists", context.name),
            ));
        }
        if !new && !exists {
            return Err(self.missing(&context.name));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.failure("create", e))?;
        let json = serde_json::to_vec_pretty(context).expect("a context serializes");
        write_private(&self.file(&context.name), &json, false).map_err(|e| self.failure("write", e))
    }

    /// Removes the context named `name`; the current one only with
    /// `force` (then `default` is current again).
    pub fn remove(&self, name: &str, force: bool) -> Result<(), Failure> {
        if name == DEFAULT {
            return Err(Failure::local(
                format!("context rm {DEFAULT}"),
                "the default context cannot be removed",
            ));
        }
        if self.get(name)?.is_none() {
            return Err(self.missing(name));
        }
        if self.current()? == name {
            if !force {
                return Err(Failure::local(
                    format!("context rm {name}"),
                    format!(
                        "context \"{name}\" is in use, set a different context with \
                         `dockwire context use`, or use --force"
                    ),
                ));
            }
            self.set_current(DEFAULT)?;
        }
        fs::remove_file(self.file(name)).map_err(|e| self.failure("remove", e))
    }

    /// The current context's name (`default` when none was chosen).
    pub fn current(&self) -> Result<String, Failure> {
        let path = self.dir.join("current");
        let what = || format!("read {}", path.display());
        Ok(read_if_exists(&path, what)?
            .map(|text| text.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| DEFAULT.to_owned()))
    }

    /// Makes `name` the current context.
    pub fn set_current(&self, name: &str) -> Result<(), Failure> {
        self.must_get(name)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.failure("create", e))?;
        write_private(
            &self.dir.join("current"),
            format!("{name}\n").as_bytes(),
            false,
        )
        .map_err(|e| self.failure("write", e))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn missing(&self, name: &str) -> Failure {
        Failure::local(
            format!("context {name}"),
            format!("context \"{name}\" does not exist"),
        )
    }

    fn failure(&self, doing: &str, e: io::Error) -> Failure {
        Failure::local(format!("{doing} {}", self.dir.display()), e)
    }
}

/// A context's name, as docker's: a letter or digit, then letters,
/// digits and `_.+-`; at most 64.
pub fn check_name(name: &str) -> Result<(), Failure> {
    let mut bytes = name.bytes();
    let first = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'));
    match first && rest && name.len() <= 64 {
        true => Ok(()),
        false => Err(Failure::local(
            format!("context {name:?}"),
            "a context name is a letter or digit, then letters, digits and _.+- (at most 64)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(what: &str) -> Contexts {
        let dir =
            std::env::temp_dir().join(format!("dockwire-contexts-{what}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Contexts::new(dir)
    }

    fn context(name: &str, host: &str) -> Context {
        Context {
            name: name.into(),
            description: format!("{name}'s"),
            host: host.into(),
            server_fingerprint: None,
        }
    }

    #[test]
    fn contexts_are_made_listed_used_changed_and_removed() {
        let contexts = scratch("cycle");
        assert_eq!(contexts.current().unwrap(), DEFAULT);
        let gpu = context("gpu1", "quic://gpu1:7447");
        contexts.save(&gpu, true).unwrap();
        contexts
            .save(&context("a.b_c+d-e", "unix:///run/x"), true)
            .unwrap();
        let names: Vec<String> = contexts
            .list()
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["default", "a.b_c+d-e", "gpu1"]);
        assert!(contexts.save(&gpu, true).is_err(), "made twice");
        contexts.set_current("gpu1").unwrap();
        assert_eq!(contexts.current().unwrap(), "gpu1");
        let mut changed = gpu.clone();
        changed.host = "quic://gpu1:9000".into();
        contexts.save(&changed, false).unwrap();
        assert_eq!(contexts.get("gpu1").unwrap(), Some(changed));
        assert!(contexts.remove("gpu1", false).is_err(), "the current one");
        contexts.remove("gpu1", true).unwrap();
        assert_eq!(contexts.current().unwrap(), DEFAULT);
        assert_eq!(contexts.get("gpu1").unwrap(), None);
        assert!(
            contexts.save(&context("nope", ""), false).is_err(),
            "update of none"
        );
        let _ = fs::remove_dir_all(&contexts.dir);
    }

    #[test]
    fn default_is_built_in_and_names_are_checked() {
        let contexts = scratch("names");
        assert_eq!(
            contexts.get(DEFAULT).unwrap(),
            Some(Context::default_context())
        );
        assert!(contexts.save(&context(DEFAULT, "quic://x"), true).is_err());
        assert!(contexts.remove(DEFAULT, true).is_err());
        for bad in ["", "-x", "a/b", "../x", "a b", "x:y", &"x".repeat(65)] {
            assert!(contexts.get(bad).is_err(), "{bad:?}");
            assert!(
                contexts.save(&context(bad, "quic://x"), true).is_err(),
                "{bad:?}"
            );
        }
        assert!(contexts.set_current("missing").is_err());
    }
}
