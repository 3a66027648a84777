//! Messages that cross the boundary between the host and the core.
//!
//! Field names and shapes follow `docs/boundary.md`; the host sends and
//! receives them as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, as the host's clock reads them.
pub type UnixMillis = i64;

/// Identifier of a command in flight, unique within one core instance.
pub type CommandId = u32;

/// A chat message the host forwards to [`crate::Core::start`].
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub sender: String,
    pub room_id: String,
    pub body: String,
    /// True for a command the host issues itself (the start-up status
    /// check), which skips the whitelist check. Never set for chat messages.
    #[serde(default)]
    pub internal: bool,
}

/// The next thing the host must do for a command.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Perform this request and pass the outcome to `resume`.
    Http {
        request: HttpRequest,
        log: Vec<LogLine>,
    },
    /// Send this reply; the command is finished.
    Reply { reply: Reply, log: Vec<LogLine> },
    /// The message was not a command; there is nothing to send.
    Ignore { log: Vec<LogLine> },
}

/// Which `Authorization` header the host attaches to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    /// HTTP Basic with the configured client ID and secret.
    Client,
    /// `Bearer` with the access token the host stored from the token endpoint.
    Bearer,
    /// No `Authorization` header (OpenID discovery).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// An HTTP request for the host to perform.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRequest {
    pub method: Method,
    /// Absolute URL, already percent-encoded.
    pub url: String,
    pub auth: AuthScheme,
    pub timeout_ms: u64,
    /// Headers to send besides `Authorization`, with lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

/// What the host got back for an [`HttpRequest`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub body: String,
    /// The `Retry-After` header as sent, if any.
    #[serde(default)]
    pub retry_after: Option<String>,
    /// True when the host took an `access_token` out of this body and kept it.
    #[serde(default)]
    pub access_token_stored: bool,
}

/// Why no HTTP response arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Timeout,
    Connection,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TransportFailure {
    pub kind: FailureKind,
    #[serde(default)]
    pub message: String,
}

/// The outcome of an [`HttpRequest`]: a response or a transport failure.
#[derive(Debug, Clone)]
pub enum Outcome {
    Response(HttpResponse),
    Failure(TransportFailure),
}

/// A message for the room, in plain text and in HTML.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// Plain text with markdown code spans, for the event's `body`.
    pub body: String,
    /// The same content as HTML, for `formatted_body`.
    pub html: String,
    /// True when the reply reports a failure or a rejected command.
    pub error: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

/// A line for the host's log. Never contains a secret or an access token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

impl LogLine {
    pub fn new(level: LogLevel, message: impl Into<String>) -> Self {
        LogLine {
            level,
            message: message.into(),
        }
    }
}
