//! One state machine per command. A flow requests admin API calls and turns
//! their responses into a reply; the runner around it handles access
//! tokens, transport failures and server errors.

mod generate;
mod list;
mod lookup;
mod status;
mod target;

pub use generate::Generate;
pub use list::{ListAll, ListFiltered, LIST_PAGE_SIZE};
pub use lookup::LookupCache;
pub use status::Status;
pub use target::{Action, Target, SEARCH_PAGE_SIZE};

use crate::config::Config;
use crate::mas::admin::AdminCall;
use crate::mas::error;
use crate::protocol::{HttpResponse, LogLevel, LogLine, Reply};
use crate::reply;
use crate::time::Timestamp;

/// The state a flow may read and change while it handles one step.
pub struct Context<'a> {
    pub config: &'a Config,
    pub now: Timestamp,
    pub lookup: &'a mut LookupCache,
    pub log: &'a mut Vec<LogLine>,
    /// The Matrix user and room the command came from, for audit lines.
    pub sender: &'a str,
    pub room_id: &'a str,
}

impl Context<'_> {
    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.log.push(LogLine::new(level, message));
    }

    /// Logs a change a command made, once, with who made it and where.
    pub fn audit(&mut self, what: impl std::fmt::Display) {
        let line = format!("audit: {} in {} {what}", self.sender, self.room_id);
        self.log(LogLevel::Info, line);
    }
}

/// The next action a flow requests.
#[derive(Debug)]
pub enum FlowStep {
    Call(AdminCall),
    Done(Reply),
}

/// A failure the runner met before the flow saw a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Getting an access token failed. `reached` is false when the token
    /// endpoint could not be reached or responded like something else;
    /// `credentials` and `scope` are `Some(false)` for the step that failed
    /// and `None` for steps that could not be checked.
    Token {
        reached: bool,
        credentials: Option<bool>,
        scope: Option<bool>,
        message: String,
    },
    /// The admin API call failed (transport, 5xx, 429, not found, or a
    /// second 401).
    Admin { message: String },
}

pub trait Flow {
    fn begin(&mut self, cx: &mut Context<'_>) -> FlowStep;

    /// Handles the response to the last call. The runner has already dealt
    /// with 401, 429, 5xx and non-JSON 404 responses.
    fn on_response(&mut self, cx: &mut Context<'_>, response: &HttpResponse) -> FlowStep;

    /// Returns whether to request a new access token even while a cached one is usable.
    fn needs_fresh_token(&self) -> bool {
        false
    }

    /// Replaces the runner's error reply for `failure`; `None` keeps it.
    fn on_failure(&mut self, _cx: &mut Context<'_>, _failure: &Failure) -> Option<Reply> {
        None
    }
}

/// Logs a response a flow did not expect and returns the reply for it.
pub fn unexpected_response(cx: &mut Context<'_>, call: &str, response: &HttpResponse) -> FlowStep {
    let detail = error::describe_body(response);
    cx.log(
        LogLevel::Error,
        format!("{call}: unexpected HTTP {} with {detail}", response.status),
    );

    let message = match error::first_title(&response.body) {
        Some(title) => format!("MAS rejected the request (HTTP {}): {title}", response.status),
        None => format!(
            "MAS error: unexpected HTTP {} response; details are in the bot's log.",
            response.status
        ),
    };
    FlowStep::Done(reply::error(&message))
}

/// Logs a success response whose body does not parse and returns the reply for it.
pub fn unreadable_response(cx: &mut Context<'_>, call: &str, problem: impl std::fmt::Display) -> FlowStep {
    cx.log(LogLevel::Error, format!("{call}: {problem}"));
    FlowStep::Done(reply::error(
        "MAS error: its response could not be read; details are in the bot's log.",
    ))
}
