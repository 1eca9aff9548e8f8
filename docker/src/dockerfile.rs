//! A user's Dockerfile, read before the engine's builder reads it: the
//! images it names (each `FROM` and `COPY --from`, the only places a
//! build reads an image) and what a user's build may not do.
//!
//! The engine would look an image name up in its whole store and pull
//! what it lacks from wherever the name points: a user's build could read
//! another peer's image, or make the engine fetch past the allowed
//! registries. So the server reads the Dockerfile as the classic builder
//! does (its parser directives, comments, line continuations and stage
//! names), resolves each image it names as the user's own references are
//! resolved, and hands the builder a Dockerfile naming those images by
//! id: what was checked is what is built from, and nothing is pulled.
//!
//! Refused for users, before anything is built: an image named through a
//! variable (`FROM $BASE`: its value would only be known to the builder),
//! `ADD` of a URL or a git repository (the engine's host would fetch it),
//! and, when the server puts users under a runtime of its own
//! (`--user-runtime`), `RUN` (the builder's containers run under the
//! engine's default runtime).

use dockwire_core::CallError;

use crate::error::invalid_input;

/// An instruction of a Dockerfile, its continuation lines joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Instruction {
    /// Upper case (`FROM`, `COPY`…).
    pub keyword: String,
    /// What follows the keyword.
    pub args: String,
}

/// An image a Dockerfile names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageUse {
    /// The instruction's index.
    pub at: usize,
    /// The reference as written.
    pub reference: String,
}

/// A Dockerfile read as the classic builder reads it.
#[derive(Clone, Debug)]
pub(crate) struct Dockerfile {
    /// Its parser directives' lines (`# escape=…`), kept as written.
    directives: Vec<String>,
    pub instructions: Vec<Instruction>,
}

impl Dockerfile {
    /// Reads `text`.
    pub(crate) fn parse(text: &str) -> Dockerfile {
        let mut lines = text.lines().peekable();
        let mut directives = Vec::new();
        let mut escape = '\\';
        while let Some(line) = lines.peek() {
            let Some(directive) = directive(line) else {
                break;
            };
            if let ("escape", value) = directive {
                if let Some(c) = value.chars().next().filter(|c| matches!(c, '\\' | '`')) {
                    escape = c;
                }
            }
            directives.push((*line).to_owned());
            lines.next();
        }
        let mut instructions = Vec::new();
        let mut logical = String::new();
        for line in lines {
            let trimmed = line.trim_start();
            if trimmed.starts_with('#') || (trimmed.is_empty() && !logical.is_empty()) {
                // A comment, or an empty line inside a continuation.
                continue;
            }
            let end = line.trim_end();
            match end.strip_suffix(escape) {
                Some(head) => {
                    logical.push_str(head);
                    continue;
                }
                None => logical.push_str(end),
            }
            let whole = std::mem::take(&mut logical);
            if let Some(instruction) = instruction(&whole) {
                instructions.push(instruction);
            }
        }
        if let Some(instruction) = instruction(&logical) {
            instructions.push(instruction);
        }
        Dockerfile {
            directives,
            instructions,
        }
    }

    /// The images it names: each `FROM` that is no earlier stage nor
    /// `scratch`, and each `COPY --from` that is no stage's name or index.
    /// Refuses what a user's build may not do (see the module's
    /// documentation); `run_allowed` is false when the server forces a
    /// runtime on users.
    pub(crate) fn images(&self, run_allowed: bool) -> Result<Vec<ImageUse>, CallError> {
        let mut stages: Vec<String> = Vec::new();
        let mut images = Vec::new();
        for (at, instruction) in self.instructions.iter().enumerate() {
            check(instruction, run_allowed)?;
            match instruction.keyword.as_str() {
                "FROM" => {
                    let words = words_after_flags(&instruction.args);
                    let reference = words.first().copied().unwrap_or_default();
                    literal(reference)?;
                    let is_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(reference));
                    if !is_stage && !reference.eq_ignore_ascii_case("scratch") {
                        images.push(ImageUse {
                            at,
                            reference: reference.to_owned(),
                        });
                    }
                    // An unnamed stage is still a stage, by its index.
                    let name = match words.as_slice() {
                        [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => *name,
                        _ => "",
                    };
                    stages.push(name.to_owned());
                }
                "COPY" => {
                    if let Some(from) = flag(&instruction.args, "from") {
                        literal(from)?;
                        let is_index = from
                            .parse::<usize>()
                            .is_ok_and(|index| index < stages.len().saturating_sub(1));
                        let is_stage = stages
                            .iter()
                            .any(|s| !s.is_empty() && s.eq_ignore_ascii_case(from));
                        if !is_index && !is_stage {
                            images.push(ImageUse {
                                at,
                                reference: from.to_owned(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(images)
    }

    /// The Dockerfile with each image `images` names replaced by the
    /// matching `ids` (in the same order), every instruction on a line of
    /// its own.
    pub(crate) fn with_images(&self, images: &[ImageUse], ids: &[String]) -> String {
        let mut out = String::new();
        for directive in &self.directives {
            out.push_str(directive);
            out.push('\n');
        }
        for (at, instruction) in self.instructions.iter().enumerate() {
            let mut args = instruction.args.clone();
            for (used, id) in images.iter().zip(ids).filter(|(u, _)| u.at == at) {
                args = match instruction.keyword.as_str() {
                    "FROM" => replace_word(&args, &used.reference, id),
                    _ => args.replacen(
                        &format!("--from={}", used.reference),
                        &format!("--from={id}"),
                        1,
                    ),
                };
            }
            out.push_str(&instruction.keyword);
            out.push(' ');
            out.push_str(&args);
            out.push('\n');
        }
        out
    }
}

/// Refuses `instruction` (or an `ONBUILD` trigger) when a user's build
/// may not run it.
pub(crate) fn check(instruction: &Instruction, run_allowed: bool) -> Result<(), CallError> {
    match instruction.keyword.as_str() {
        "ONBUILD" => match self::instruction(&instruction.args) {
            Some(inner) if inner.keyword == "COPY" && flag(&inner.args, "from").is_some() => Err(
                invalid_input("a user's build may not use ONBUILD COPY --from"),
            ),
            Some(inner) => check(&inner, run_allowed),
            None => Ok(()),
        },
        "RUN" if !run_allowed => Err(invalid_input(
            "this server runs users' containers under a runtime of its own, which the \
             engine's builder cannot use: a user's build may not RUN",
        )),
        "ADD" => {
            for source in sources(&instruction.args) {
                let lower = source.to_ascii_lowercase();
                let remote = ["http://", "https://", "git://", "git@", "ssh://"]
                    .iter()
                    .any(|p| lower.starts_with(p));
                if remote {
                    return Err(invalid_input(format!(
                        "a user's build may not ADD {source:?}: the engine's host would fetch \
                         it (fetch it into the context instead)"
                    )));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Refuses an image reference written through a variable.
fn literal(reference: &str) -> Result<(), CallError> {
    if reference.is_empty() {
        return Err(invalid_input("a FROM names no image"));
    }
    if reference.contains('$') {
        return Err(invalid_input(format!(
            "a user's build must name its images literally, not {reference:?}"
        )));
    }
    Ok(())
}

/// A parser directive line's key (lower case) and value.
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    let known = ["escape", "syntax"]
        .into_iter()
        .find(|k| k.eq_ignore_ascii_case(key))?;
    Some((known, value.trim()))
}

fn instruction(line: &str) -> Option<Instruction> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    Some(Instruction {
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_owned(),
    })
}

/// The words of `args` after its leading `--flag`s.
fn words_after_flags(args: &str) -> Vec<&str> {
    args.split_whitespace()
        .skip_while(|w| w.starts_with("--"))
        .collect()
}

/// The value of the leading flag `--name=value` of `args`.
fn flag<'a>(args: &'a str, name: &str) -> Option<&'a str> {
    args.split_whitespace()
        .take_while(|w| w.starts_with("--"))
        .find_map(|w| {
            let (key, value) = w[2..].split_once('=')?;
            key.eq_ignore_ascii_case(name).then_some(value)
        })
}

/// An `ADD`'s or `COPY`'s sources: all its words (or JSON array items)
/// after its flags but the last.
fn sources(args: &str) -> Vec<String> {
    let rest: String = args
        .split_whitespace()
        .skip_while(|w| w.starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<String> = match serde_json::from_str::<Vec<String>>(&rest) {
        Ok(items) => items,
        Err(_) => rest.split_whitespace().map(str::to_owned).collect(),
    };
    match words.split_last() {
        Some((_, sources)) => sources.to_vec(),
        None => Vec::new(),
    }
}

/// `args` with its first word after the flags equal to `from` replaced.
fn replace_word(args: &str, from: &str, to: &str) -> String {
    let mut replaced = false;
    args.split_whitespace()
        .map(|w| {
            if !replaced && !w.starts_with("--") && w == from {
                replaced = true;
                to.to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(text: &str) -> Vec<String> {
        Dockerfile::parse(text)
            .images(true)
            .unwrap()
            .into_iter()
            .map(|u| u.reference)
            .collect()
    }

    #[test]
    fn froms_and_copy_froms_are_the_images_stages_and_scratch_are_not() {
        let text = "\
# escape=\\
# a comment
FROM --platform=linux/amd64 busybox:1 AS build
RUN echo hi \\
  # a comment inside
  && echo there
FROM build
COPY --from=build /a /b
COPY --from=0 /a /b
COPY --chown=1:1 --from=alpine:3 /etc/os-release /c
from Scratch
FROM dockwire/testbox as final
";
        assert_eq!(images(text), ["busybox:1", "alpine:3", "dockwire/testbox"]);
        let parsed = Dockerfile::parse(text);
        assert_eq!(parsed.instructions[1].args, "echo hi   && echo there");
    }

    #[test]
    fn the_rewritten_dockerfile_names_the_ids_and_keeps_the_rest() {
        let text = "# escape=`\nFROM app AS a\nRUN x `\n  y\nCOPY --from=tool /t /t\nFROM a\n";
        let parsed = Dockerfile::parse(text);
        let used = parsed.images(true).unwrap();
        let ids = ["sha256:1".to_owned(), "sha256:2".to_owned()];
        assert_eq!(
            parsed.with_images(&used, &ids),
            "# escape=`\nFROM sha256:1 AS a\nRUN x   y\nCOPY --from=sha256:2 /t /t\nFROM a\n"
        );
    }

    #[test]
    fn variables_urls_and_run_under_a_forced_runtime_are_refused() {
        let refused = |text: &str, run: bool| Dockerfile::parse(text).images(run).is_err();
        assert!(refused("ARG B=busybox\nFROM $B\n", true));
        assert!(refused("FROM busybox\nCOPY --from=${X} /a /b\n", true));
        assert!(refused(
            "FROM busybox\nADD http://127.0.0.1:8080/x /x\n",
            true
        ));
        assert!(refused(
            "FROM busybox\nADD [\"https://h/x\", \"/x\"]\n",
            true
        ));
        assert!(refused("FROM busybox\nadd git@github.com:a/b /x\n", true));
        assert!(refused("FROM busybox\nRUN true\n", false));
        assert!(refused("FROM busybox\nONBUILD RUN true\n", false));
        assert!(refused("FROM busybox\nONBUILD COPY --from=x /a /b\n", true));
        assert!(!refused("FROM busybox\nRUN true\nADD local.tar /x\n", true));
        assert!(!refused("FROM busybox\nCOPY . /x\n", false));
    }
}
