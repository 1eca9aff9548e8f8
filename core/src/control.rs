//! Control messages: the JSON objects that travel in type-3 chunks.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call_error::{CallError, ErrorCode};

/// A control message of the raw carriage.
///
/// Unknown `type`s decode to `None` and are ignored, so both sides can grow.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Control {
    /// Client → server: the terminal's new size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Client → server: deliver a signal, by name without `SIG` (`"INT"`).
    Signal {
        /// The signal's name.
        name: String,
    },
    /// Client → server: stdin closed, same as a zero-length stdin chunk.
    Eof,
    /// Either way: cancel the call. The server answers with its own
    /// `abort`; after the server's `abort` nothing follows.
    Abort,
    /// Server → client: the session ended with this exit code; always last.
    Exit {
        /// The exit code.
        code: i32,
    },
    /// Server → client: the session failed after acceptance; always last.
    Error(CallError),
}

impl Control {
    /// The `type` field of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            Control::Resize { .. } => "resize",
            Control::Signal { .. } => "signal",
            Control::Eof => "eof",
            Control::Abort => "abort",
            Control::Exit { .. } => "exit",
            Control::Error(_) => "error",
        }
    }

    /// The message's JSON text.
    pub fn to_json(&self) -> Vec<u8> {
        let out = match self {
            Control::Resize { cols, rows } => serde_json::to_vec(&ResizeOut {
                kind: "resize",
                cols: *cols,
                rows: *rows,
            }),
            Control::Signal { name } => serde_json::to_vec(&SignalOut {
                kind: "signal",
                name,
            }),
            Control::Eof | Control::Abort => serde_json::to_vec(&TypeOnly {
                kind: self.type_name(),
            }),
            Control::Exit { code } => serde_json::to_vec(&ExitOut {
                kind: "exit",
                code: *code,
            }),
            Control::Error(e) => serde_json::to_vec(&ErrorOut { kind: "error", e }),
        };
        // Plain structs of strings and numbers always serialize.
        out.expect("a control message always serializes")
    }

    /// Reads a control chunk's payload. `Ok(None)`: a well-formed message
    /// of a type this side does not know, to be ignored.
    pub fn decode(payload: &[u8]) -> Result<Option<Control>, ControlError> {
        let value: Value = serde_json::from_slice(payload).map_err(ControlError::Json)?;
        let Some(kind) = value.get("type") else {
            return Err(if value.is_object() {
                ControlError::MissingType
            } else {
                ControlError::NotAnObject
            });
        };
        let Some(kind) = kind.as_str() else {
            return Err(ControlError::MissingType);
        };
        let kind = kind.to_owned();
        let invalid = |source| ControlError::Invalid {
            kind: kind.clone(),
            source,
        };
        let control = match kind.as_str() {
            "resize" => {
                let r: ResizeIn = serde_json::from_value(value).map_err(invalid)?;
                Control::Resize {
                    cols: r.cols,
                    rows: r.rows,
                }
            }
            "signal" => {
                let s: SignalIn = serde_json::from_value(value).map_err(invalid)?;
                Control::Signal { name: s.name }
            }
            "eof" => Control::Eof,
            "abort" => Control::Abort,
            "exit" => {
                let e: ExitIn = serde_json::from_value(value).map_err(invalid)?;
                Control::Exit { code: e.code }
            }
            "error" => {
                let e: ErrorIn = serde_json::from_value(value).map_err(invalid)?;
                Control::Error(CallError {
                    code: e.code,
                    message: e.message,
                    retryable: e.retryable,
                    details: e.details,
                })
            }
            _ => return Ok(None),
        };
        Ok(Some(control))
    }
}

#[derive(Serialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct ResizeOut {
    #[serde(rename = "type")]
    kind: &'static str,
    cols: u16,
    rows: u16,
}

#[derive(Serialize)]
struct SignalOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
}

#[derive(Serialize)]
struct ExitOut {
    #[serde(rename = "type")]
    kind: &'static str,
    code: i32,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    e: &'a CallError,
}

#[derive(Deserialize)]
struct ResizeIn {
    cols: u16,
    rows: u16,
}

#[derive(Deserialize)]
struct SignalIn {
    name: String,
}

#[derive(Deserialize)]
struct ExitIn {
    code: i32,
}

// DESIGN.md's error control has code and message only; retryable and
// details are optional here so that such peers are understood.
#[derive(Deserialize)]
struct ErrorIn {
    code: ErrorCode,
    message: String,
    #[serde(default)]
    retryable: bool,
    #[serde(default)]
    details: Option<Value>,
}

/// A control chunk whose payload is not a valid control message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The payload is not JSON (or not UTF-8).
    #[error("control payload is not JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The payload is JSON but not an object.
    #[error("control payload is not a JSON object")]
    NotAnObject,
    /// The object has no string `type`.
    #[error("control message has no string \"type\"")]
    MissingType,
    /// A known type with fields of the wrong shape (a resize of -1 columns).
    #[error("invalid {kind} control message: {source}")]
    Invalid {
        /// The control type.
        kind: String,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_has_the_design_json_and_round_trips() {
        let cases = [
            (
                Control::Resize { cols: 80, rows: 24 },
                r#"{"type":"resize","cols":80,"rows":24}"#,
            ),
            (
                Control::Signal { name: "INT".into() },
                r#"{"type":"signal","name":"INT"}"#,
            ),
            (Control::Eof, r#"{"type":"eof"}"#),
            (Control::Abort, r#"{"type":"abort"}"#),
            (Control::Exit { code: -1 }, r#"{"type":"exit","code":-1}"#),
            (
                Control::Error(CallError::new(ErrorCode::INTERNAL, "boom")),
                r#"{"type":"error","code":"INTERNAL","message":"boom","retryable":false}"#,
            ),
        ];
        for (control, json) in cases {
            assert_eq!(String::from_utf8(control.to_json()).unwrap(), json);
            assert_eq!(Control::decode(json.as_bytes()).unwrap(), Some(control));
        }
    }

    #[test]
    fn error_without_retryable_is_understood() {
        let c = Control::decode(br#"{"type":"error","code":"X","message":"m"}"#).unwrap();
        assert_eq!(
            c,
            Some(Control::Error(CallError::new(ErrorCode::new("X"), "m")))
        );
    }

    #[test]
    fn unknown_types_are_ignored() {
        assert_eq!(
            Control::decode(br#"{"type":"dance","moves":3}"#).unwrap(),
            None
        );
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        assert!(matches!(
            Control::decode(b"{oops"),
            Err(ControlError::Json(_))
        ));
        assert!(matches!(
            Control::decode(&[0xff]),
            Err(ControlError::Json(_))
        ));
        assert!(matches!(
            Control::decode(b"[1]"),
            Err(ControlError::NotAnObject)
        ));
        assert!(matches!(
            Control::decode(b"{}"),
            Err(ControlError::MissingType)
        ));
        assert!(matches!(
            Control::decode(br#"{"type":5}"#),
            Err(ControlError::MissingType)
        ));
        for bad in [
            r#"{"type":"resize","cols":-1,"rows":24}"#,
            r#"{"type":"resize","cols":65536,"rows":24}"#,
            r#"{"type":"resize","cols":80}"#,
            r#"{"type":"signal","name":9}"#,
            r#"{"type":"exit","code":"zero"}"#,
            r#"{"type":"exit","code":4294967296}"#,
            r#"{"type":"error","message":"m"}"#,
        ] {
            assert!(
                matches!(
                    Control::decode(bad.as_bytes()),
                    Err(ControlError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }
}
