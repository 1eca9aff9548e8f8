//! The JSON envelope every frame carries: `{"type", "id", "payload"}`.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::call_error::CallError;

/// What follows `call.requested` on a call's stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Carriage {
    /// More JSON frames: queries, mutations, subscriptions.
    #[default]
    Json,
    /// Byte chunks: stdin, stdout, stderr and control of an interactive session.
    Raw,
}

/// The payload of `call.requested`.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The operation's name, without leading `/`s (they are accepted on the
    /// wire and dropped).
    pub operation: String,
    /// The operation's input; `null` when the wire left it out.
    pub input: Value,
    /// What follows on the stream.
    pub carriage: Carriage,
}

impl Request {
    /// A request for `operation` with `input` on the given carriage.
    /// Leading `/`s on the operation are dropped, as the wire would.
    pub fn new(operation: impl Into<String>, input: Value, carriage: Carriage) -> Self {
        Request {
            operation: normalize_operation(operation.into()),
            input,
            carriage,
        }
    }
}

/// Drops every leading `/`: `/fs/readFile` and `fs/readFile` name the same
/// operation, and so does `//fs/readFile`, which keeps the name the same
/// however often it is written and read again.
fn normalize_operation(op: String) -> String {
    match op.find(|c| c != '/') {
        Some(0) => op,
        Some(start) => op[start..].to_owned(),
        None => String::new(),
    }
}

/// One frame's worth of protocol: which call, and what happened to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// The call's id, chosen by the client and echoed by the server.
    pub id: String,
    /// What the frame says.
    pub payload: Payload,
}

/// The typed payload of an envelope; its variant decides the `type` field.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// `call.requested`: the first frame of every call.
    Requested(Request),
    /// `call.responded`: one output (`{"output": ...}`).
    Responded(Value),
    /// `call.completed`: the natural end.
    Completed,
    /// `call.aborted`: cancelled.
    Aborted,
    /// `call.error`: failed; terminal.
    Error(CallError),
}

impl Payload {
    /// The `type` field this payload travels under.
    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::Requested(_) => "call.requested",
            Payload::Responded(_) => "call.responded",
            Payload::Completed => "call.completed",
            Payload::Aborted => "call.aborted",
            Payload::Error(_) => "call.error",
        }
    }
}

impl Envelope {
    /// An envelope for call `id`.
    pub fn new(id: impl Into<String>, payload: Payload) -> Self {
        Envelope {
            id: id.into(),
            payload,
        }
    }

    /// The envelope's JSON text, as a frame body carries it.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.write_json(&mut out);
        out
    }

    /// Appends the envelope's JSON text to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Writing JSON to a Vec fails only for maps with non-string keys,
        // which `serde_json::Value` cannot hold.
        serde_json::to_writer(out, self).expect("an envelope always serializes");
    }

    /// Reads an envelope from a frame body.
    pub fn from_json(body: &[u8]) -> Result<Envelope, EnvelopeError> {
        // serde's derived struct decoding also takes a JSON array, field by
        // field; the protocol's envelope and payloads are objects only.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(EnvelopeError::Json(serde::de::Error::custom(
                "an envelope must be a JSON object",
            )));
        }
        let wire: WireIn = serde_json::from_slice(body).map_err(EnvelopeError::Json)?;
        let WireIn { kind, id, payload } = wire;
        let known = matches!(
            kind.as_str(),
            "call.requested" | "call.responded" | "call.completed" | "call.aborted" | "call.error"
        );
        if !known {
            return Err(EnvelopeError::UnknownType { id, kind });
        }
        if !payload.is_object() {
            return Err(EnvelopeError::NotAnObject { id, kind });
        }
        let parsed = match kind.as_str() {
            "call.requested" => serde_json::from_value::<RequestIn>(payload).map(|r| {
                Payload::Requested(Request {
                    operation: normalize_operation(r.operation_id),
                    input: r.input,
                    carriage: r.carriage,
                })
            }),
            "call.responded" => {
                serde_json::from_value::<RespondedIn>(payload).map(|r| Payload::Responded(r.output))
            }
            "call.completed" => Ok(Payload::Completed),
            "call.aborted" => Ok(Payload::Aborted),
            "call.error" => serde_json::from_value::<CallError>(payload).map(Payload::Error),
            _ => return Err(EnvelopeError::UnknownType { id, kind }),
        };
        match parsed {
            Ok(payload) => Ok(Envelope { id, payload }),
            Err(source) => Err(EnvelopeError::Payload { id, kind, source }),
        }
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Envelope", 3)?;
        s.serialize_field("type", self.payload.type_name())?;
        s.serialize_field("id", &self.id)?;
        match &self.payload {
            Payload::Requested(r) => s.serialize_field(
                "payload",
                &RequestOut {
                    operation_id: &r.operation,
                    input: &r.input,
                    carriage: (r.carriage == Carriage::Raw).then_some(r.carriage),
                },
            )?,
            Payload::Responded(output) => s.serialize_field("payload", &RespondedOut { output })?,
            Payload::Completed | Payload::Aborted => s.serialize_field("payload", &Empty {})?,
            Payload::Error(e) => s.serialize_field("payload", e)?,
        }
        s.end()
    }
}

#[derive(Deserialize)]
struct WireIn {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    payload: Value,
}

#[derive(Deserialize)]
struct RequestIn {
    #[serde(rename = "operationId")]
    operation_id: String,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    carriage: Carriage,
}

#[derive(Deserialize)]
struct RespondedIn {
    output: Value,
}

#[derive(Serialize)]
struct RequestOut<'a> {
    #[serde(rename = "operationId")]
    operation_id: &'a str,
    input: &'a Value,
    // Left out for json so that json requests are byte-identical to alknet's.
    #[serde(skip_serializing_if = "Option::is_none")]
    carriage: Option<Carriage>,
}

#[derive(Serialize)]
struct RespondedOut<'a> {
    output: &'a Value,
}

#[derive(Serialize)]
struct Empty {}

/// A frame body that is not a valid envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The body is not JSON, not UTF-8, or lacks a string `type`, a string
    /// `id` or a `payload`.
    #[error("not a valid envelope: {0}")]
    Json(#[source] serde_json::Error),
    /// The `type` is none of the five `call.*` types.
    #[error("unknown envelope type {kind:?}")]
    UnknownType {
        /// The call's id.
        id: String,
        /// The type found.
        kind: String,
    },
    /// The payload is not a JSON object.
    #[error("{kind} payload must be an object")]
    NotAnObject {
        /// The call's id.
        id: String,
        /// The envelope type.
        kind: String,
    },
    /// The payload does not have the shape its type requires (a missing
    /// `operationId`, an unknown `carriage`, a `call.error` without a code…).
    #[error("invalid {kind} payload: {source}")]
    Payload {
        /// The call's id.
        id: String,
        /// The envelope type.
        kind: String,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}

impl EnvelopeError {
    /// The call id, when the body got far enough to carry one; a reply can
    /// then name the call.
    pub fn id(&self) -> Option<&str> {
        match self {
            EnvelopeError::Json(_) => None,
            EnvelopeError::UnknownType { id, .. }
            | EnvelopeError::NotAnObject { id, .. }
            | EnvelopeError::Payload { id, .. } => Some(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call_error::ErrorCode;
    use serde_json::json;

    fn text(e: &Envelope) -> String {
        String::from_utf8(e.to_json()).unwrap()
    }

    #[test]
    fn each_type_writes_the_design_json() {
        let cases = [
            (
                Payload::Requested(Request::new("/a/b", json!({"x": 1}), Carriage::Json)),
                r#"{"type":"call.requested","id":"i","payload":{"operationId":"a/b","input":{"x":1}}}"#,
            ),
            (
                Payload::Requested(Request::new("a/b", json!(null), Carriage::Raw)),
                r#"{"type":"call.requested","id":"i","payload":{"operationId":"a/b","input":null,"carriage":"raw"}}"#,
            ),
            (
                Payload::Responded(json!([1, "two"])),
                r#"{"type":"call.responded","id":"i","payload":{"output":[1,"two"]}}"#,
            ),
            (
                Payload::Completed,
                r#"{"type":"call.completed","id":"i","payload":{}}"#,
            ),
            (
                Payload::Aborted,
                r#"{"type":"call.aborted","id":"i","payload":{}}"#,
            ),
            (
                Payload::Error(CallError::new(ErrorCode::TIMEOUT, "slow")),
                r#"{"type":"call.error","id":"i","payload":{"code":"TIMEOUT","message":"slow","retryable":true}}"#,
            ),
        ];
        for (payload, want) in cases {
            let env = Envelope::new("i", payload);
            assert_eq!(text(&env), want);
            assert_eq!(Envelope::from_json(want.as_bytes()).unwrap(), env);
        }
    }

    #[test]
    fn leading_slashes_are_dropped_so_names_are_stable_across_round_trips() {
        for (given, name) in [
            ("x", "x"),
            ("/x", "x"),
            ("//x", "x"),
            ("/a/b/", "a/b/"),
            ("/", ""),
        ] {
            let body = format!(
                r#"{{"type":"call.requested","id":"r","payload":{{"operationId":"{given}"}}}}"#
            );
            let env = Envelope::from_json(body.as_bytes()).unwrap();
            let Payload::Requested(r) = &env.payload else {
                panic!()
            };
            assert_eq!(r.operation, name, "{given}");
            assert_eq!(Envelope::from_json(&env.to_json()).unwrap(), env, "{given}");
            assert_eq!(
                Request::new(given, Value::Null, Carriage::Json).operation,
                name
            );
        }
    }

    #[test]
    fn carriage_absent_means_json_and_input_absent_means_null() {
        let env = Envelope::from_json(
            br#"{"type":"call.requested","id":"r","payload":{"operationId":"x"}}"#,
        )
        .unwrap();
        assert_eq!(
            env.payload,
            Payload::Requested(Request::new("x", Value::Null, Carriage::Json))
        );
    }

    #[test]
    fn missing_fields_are_refused() {
        for body in [
            r#"{"id":"r","payload":{}}"#,
            r#"{"type":"call.completed","payload":{}}"#,
            r#"{"type":"call.completed","id":"r"}"#,
            r#"{"type":"call.completed","id":7,"payload":{}}"#,
            r#"[]"#,
            r#"nul"#,
        ] {
            let err = Envelope::from_json(body.as_bytes()).unwrap_err();
            assert!(matches!(err, EnvelopeError::Json(_)), "{body}: {err:?}");
            assert_eq!(err.id(), None);
        }
    }

    #[test]
    fn payload_errors_keep_the_id() {
        for body in [
            r#"{"type":"call.requested","id":"r","payload":{}}"#,
            r#"{"type":"call.requested","id":"r","payload":{"operationId":"x","carriage":"smoke"}}"#,
            r#"{"type":"call.responded","id":"r","payload":{}}"#,
            r#"{"type":"call.error","id":"r","payload":{"code":"X","message":"m"}}"#,
            r#"{"type":"call.error","id":"r","payload":{"code":1,"message":"m","retryable":false}}"#,
        ] {
            let err = Envelope::from_json(body.as_bytes()).unwrap_err();
            assert!(
                matches!(err, EnvelopeError::Payload { .. }),
                "{body}: {err:?}"
            );
            assert_eq!(err.id(), Some("r"));
        }
        let err =
            Envelope::from_json(br#"{"type":"call.completed","id":"r","payload":[]}"#).unwrap_err();
        assert!(matches!(err, EnvelopeError::NotAnObject { .. }));
        assert_eq!(err.id(), Some("r"));
        let err =
            Envelope::from_json(br#"{"type":"call.maybe","id":"r","payload":{}}"#).unwrap_err();
        assert!(matches!(err, EnvelopeError::UnknownType { .. }));
        assert_eq!(err.id(), Some("r"));
    }

    #[test]
    fn arrays_are_not_envelopes_nor_payloads() {
        // serde would read each of these field by field.
        let err =
            Envelope::from_json(br#" ["call.requested","h1",{"operationId":"a","input":{}}]"#)
                .unwrap_err();
        assert!(matches!(err, EnvelopeError::Json(_)), "{err:?}");
        assert_eq!(err.id(), None);
        for kind in [
            "call.requested",
            "call.responded",
            "call.error",
            "call.completed",
        ] {
            let body = format!(r#"{{"type":"{kind}","id":"h1","payload":["a",{{}}]}}"#);
            let err = Envelope::from_json(body.as_bytes()).unwrap_err();
            assert!(
                matches!(err, EnvelopeError::NotAnObject { .. }),
                "{kind}: {err:?}"
            );
            assert_eq!(err.id(), Some("h1"));
        }
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let mut body = br#"{"type":"call.completed","id":""#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(br#"","payload":{}}"#);
        assert!(matches!(
            Envelope::from_json(&body),
            Err(EnvelopeError::Json(_))
        ));
    }

    #[test]
    fn extra_fields_are_ignored_for_growth() {
        let env = Envelope::from_json(
            br#"{"type":"call.completed","id":"r","payload":{"later":1},"trace":"t"}"#,
        )
        .unwrap();
        assert_eq!(env, Envelope::new("r", Payload::Completed));
    }
}
