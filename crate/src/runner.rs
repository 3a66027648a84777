//! Runs one command's flow: finds the token endpoint through OpenID
//! discovery when only `mas_url` is configured, gets an access token when the
//! cached one is not usable, retries once with a new token after a 401, and
//! turns transport failures and server errors into replies before the flow
//! sees them.

use crate::access::AccessToken;
use crate::config::Config;
use crate::flows::{Context, Failure, Flow, FlowStep, LookupCache};
use crate::mas::admin::AdminCall;
use crate::mas::{discovery, error, oauth};
use crate::protocol::{
    FailureKind, HttpRequest, HttpResponse, LogLevel, LogLine, Outcome, Reply, Step, TransportFailure, UnixMillis,
};
use crate::reply;
use crate::time::Timestamp;

/// State shared by every command of one core instance.
#[derive(Debug, Default)]
pub struct Shared {
    pub config: Config,
    pub access: AccessToken,
    pub lookup: LookupCache,
    /// The token endpoint found through OpenID discovery, when `token_url` is not set.
    pub discovered_token_url: Option<String>,
}

impl Shared {
    fn token_url(&self) -> Option<&str> {
        if !self.config.token_url.is_empty() {
            return Some(&self.config.token_url);
        }
        self.discovered_token_url.as_deref()
    }
}

/// The request a command is waiting on. `then` is the admin call to send
/// once a token is at hand. `retried` is true once the call was sent again
/// after a 401, and `resent` once a read was sent again after a transient failure.
#[derive(Debug)]
enum Pending {
    Discovery { then: AdminCall, retried: bool },
    Token { then: AdminCall, retried: bool },
    Admin { call: AdminCall, retried: bool, resent: bool },
    Nothing,
}

/// Statuses that mean MAS or a proxy in front of it is briefly unavailable.
const TRANSIENT_STATUSES: [u16; 3] = [502, 503, 504];

pub struct Runner {
    flow: Box<dyn Flow + Send>,
    pending: Pending,
    sender: String,
    room_id: String,
}

/// Inputs of one step that do not belong to the runner.
pub struct Tick<'a> {
    pub shared: &'a mut Shared,
    pub now_ms: UnixMillis,
    pub now: Timestamp,
    pub log: &'a mut Vec<LogLine>,
}

impl Runner {
    pub fn new(flow: Box<dyn Flow + Send>, sender: &str, room_id: &str) -> Runner {
        Runner {
            flow,
            pending: Pending::Nothing,
            sender: sender.to_owned(),
            room_id: room_id.to_owned(),
        }
    }

    pub fn start(&mut self, tick: Tick<'_>) -> Step {
        let mut cx = context(&self.sender, &self.room_id, &mut tick.shared.lookup, &tick.shared.config, tick.now, tick.log);
        let step = self.flow.begin(&mut cx);
        match step {
            FlowStep::Call(call) if self.flow.needs_fresh_token() => {
                self.request_token(tick.shared, call, false, tick.log)
            }
            other => self.advance(tick, other),
        }
    }

    pub fn resume(&mut self, tick: Tick<'_>, outcome: Outcome) -> Step {
        let pending = std::mem::replace(&mut self.pending, Pending::Nothing);

        let response = match outcome {
            Outcome::Response(response) => response,
            Outcome::Failure(failure) => return self.on_transport_failure(tick, &pending, &failure),
        };

        match pending {
            Pending::Nothing => {
                tick.log.push(LogLine::new(LogLevel::Error, "received a response while no request was pending"));
                reply_step(reply::error("Internal error: unexpected response; details are in the bot's log."), tick.log)
            }
            Pending::Discovery { then, retried } => self.on_discovery(tick, then, retried, &response),
            Pending::Token { then, retried } => self.on_token(tick, then, retried, &response),
            Pending::Admin { call, retried, resent } => self.on_admin(tick, call, retried, resent, &response),
        }
    }

    fn advance(&mut self, tick: Tick<'_>, step: FlowStep) -> Step {
        match step {
            FlowStep::Done(reply) => reply_step(reply, tick.log),
            FlowStep::Call(call) if tick.shared.access.is_usable(tick.now_ms) => {
                self.send_admin(&tick.shared.config, call, false, false, tick.log)
            }
            FlowStep::Call(call) => self.request_token(tick.shared, call, false, tick.log),
        }
    }

    fn send(&mut self, request: HttpRequest, pending: Pending, log: &mut Vec<LogLine>) -> Step {
        self.pending = pending;
        Step::Http {
            request,
            log: std::mem::take(log),
        }
    }

    fn send_admin(
        &mut self,
        config: &Config,
        call: AdminCall,
        retried: bool,
        resent: bool,
        log: &mut Vec<LogLine>,
    ) -> Step {
        log.push(LogLine::new(LogLevel::Debug, call.describe()));
        let request = call.to_request(&config.admin_api, config.http_timeout_ms);
        self.send(request, Pending::Admin { call, retried, resent }, log)
    }

    /// Sends a read once more after a transient failure. Writes are never
    /// sent twice, because MAS may have applied the first one, and timeouts
    /// are not retried, so a reply comes within about one timeout.
    fn resend_once(&mut self, tick: &mut Tick<'_>, call: &AdminCall, resent: bool, retried: bool, reason: &str) -> Option<Step> {
        if resent || call.method() != crate::protocol::Method::Get {
            return None;
        }
        tick.log.push(LogLine::new(
            LogLevel::Warning,
            format!("{}: {reason}; retrying once", call.describe()),
        ));
        Some(self.send_admin(&tick.shared.config, call.clone(), retried, true, tick.log))
    }

    /// Requests an access token, after discovering the token endpoint if needed.
    // TODO: commands that start together with no usable token each request
    // one. Sharing a single in-flight request needs a way for a command to
    // wait on another, and the step protocol does not have one yet.
    fn request_token(
        &mut self,
        shared: &mut Shared,
        then: AdminCall,
        retried: bool,
        log: &mut Vec<LogLine>,
    ) -> Step {
        let timeout = shared.config.http_timeout_ms;
        let Some(token_url) = shared.token_url() else {
            log.push(LogLine::new(LogLevel::Debug, "discovering the token endpoint"));
            let request = discovery::discovery_request(&shared.config.mas_url, timeout);
            return self.send(request, Pending::Discovery { then, retried }, log);
        };

        log.push(LogLine::new(LogLevel::Debug, "requesting an access token"));
        let request = oauth::token_request(token_url, &shared.config.token_scope, timeout);
        self.send(request, Pending::Token { then, retried }, log)
    }

    fn on_discovery(&mut self, tick: Tick<'_>, then: AdminCall, retried: bool, response: &HttpResponse) -> Step {
        match discovery::read_token_endpoint(response, &tick.shared.config.mas_url) {
            Ok(url) => {
                tick.log.push(LogLine::new(LogLevel::Info, format!("discovered the token endpoint {url}")));
                tick.shared.discovered_token_url = Some(url);
                self.request_token(tick.shared, then, retried, tick.log)
            }
            Err(problem) => {
                tick.log.push(LogLine::new(
                    LogLevel::Error,
                    format!("OpenID discovery failed: HTTP {} with {}", response.status, error::describe_body(response)),
                ));
                let failure = Failure::Token {
                    reached: false,
                    credentials: None,
                    scope: None,
                    message: problem.to_string(),
                };
                self.fail(tick, failure)
            }
        }
    }

    fn on_token(&mut self, tick: Tick<'_>, then: AdminCall, retried: bool, response: &HttpResponse) -> Step {
        match oauth::read_token_response(response, &tick.shared.config.token_scope) {
            Ok(expires_in) => {
                tick.shared.access.store(tick.now_ms, expires_in);
                self.send_admin(&tick.shared.config, then, retried, false, tick.log)
            }
            Err(problem) => {
                tick.log.push(LogLine::new(
                    LogLevel::Error,
                    format!("access token request failed: {}", oauth::describe_failure(response)),
                ));
                let (reached, credentials, scope) = problem.checks();
                let failure = Failure::Token {
                    reached,
                    credentials,
                    scope,
                    message: problem.to_string(),
                };
                self.fail(tick, failure)
            }
        }
    }

    fn on_admin(
        &mut self,
        mut tick: Tick<'_>,
        call: AdminCall,
        retried: bool,
        resent: bool,
        response: &HttpResponse,
    ) -> Step {
        if response.status == 401 {
            tick.shared.access.forget();
            return self.on_unauthorized(tick, call, retried, response);
        }
        if TRANSIENT_STATUSES.contains(&response.status) {
            let reason = format!("MAS answered HTTP {}", response.status);
            if let Some(step) = self.resend_once(&mut tick, &call, resent, retried, &reason) {
                return step;
            }
        }
        if let Some(message) = server_failure(&call, response, tick.log) {
            return self.fail(tick, Failure::Admin { message });
        }

        let step = {
            let mut cx = context(&self.sender, &self.room_id, &mut tick.shared.lookup, &tick.shared.config, tick.now, tick.log);
            self.flow.on_response(&mut cx, response)
        };
        self.advance(tick, step)
    }

    /// Handles a 401, which means the access token expired or was revoked,
    /// by getting a new one and sending the call again, once.
    fn on_unauthorized(&mut self, tick: Tick<'_>, call: AdminCall, retried: bool, response: &HttpResponse) -> Step {
        let title = error::first_title(&response.body).unwrap_or_else(|| "no reason given".to_owned());
        if !retried {
            tick.log.push(LogLine::new(
                LogLevel::Warning,
                format!("{}: MAS answered 401 ({title}); retrying once with a new access token", call.describe()),
            ));
            return self.request_token(tick.shared, call, true, tick.log);
        }

        tick.log.push(LogLine::new(
            LogLevel::Error,
            format!("{}: MAS answered 401 ({title}) to a new access token", call.describe()),
        ));
        let message = if title.contains("scope") {
            format!("MAS rejected the bot's access token: {title}. Add the bot's `client_id` to `policy.data.admin_clients` in MAS's config and restart MAS.")
        } else {
            format!("MAS rejected a freshly issued access token: {title}. Check that `token_url` and `admin_api` point at the same MAS.")
        };
        self.fail(tick, Failure::Admin { message })
    }

    fn on_transport_failure(&mut self, mut tick: Tick<'_>, pending: &Pending, failure: &TransportFailure) -> Step {
        if let (Pending::Admin { call, retried, resent }, FailureKind::Connection) = (pending, failure.kind) {
            let reason = format!("connection failure: {}", failure.message);
            if let Some(step) = self.resend_once(&mut tick, call, *resent, *retried, &reason) {
                return step;
            }
        }

        let target = match pending {
            Pending::Discovery { .. } => "OpenID discovery".to_owned(),
            Pending::Token { .. } => "the token endpoint".to_owned(),
            Pending::Admin { call, .. } => call.describe(),
            Pending::Nothing => "no pending request".to_owned(),
        };
        tick.log.push(LogLine::new(
            LogLevel::Error,
            format!("{target}: {:?} failure: {}", failure.kind, failure.message),
        ));

        let message = match failure.kind {
            FailureKind::Timeout => {
                let timeout = tick.shared.config.http_timeout_ms;
                let unit = if timeout == 1000 { "second" } else { "seconds" };
                format!(
                    "MAS error: no answer within {} {unit}. Check that MAS is running and reachable from the bot.",
                    seconds_text(timeout)
                )
            }
            FailureKind::Connection => "MAS error: could not connect to MAS or read its response. Check `admin_api` and `token_url` and that MAS is running; details are in the bot's log.".to_owned(),
        };
        let failure = match pending {
            Pending::Admin { .. } => Failure::Admin { message },
            _ => Failure::Token { reached: false, credentials: None, scope: None, message },
        };
        self.fail(tick, failure)
    }

    /// Ends the command with the flow's reply for `failure`, or a plain error.
    fn fail(&mut self, tick: Tick<'_>, failure: Failure) -> Step {
        let custom = {
            let mut cx = context(&self.sender, &self.room_id, &mut tick.shared.lookup, &tick.shared.config, tick.now, tick.log);
            self.flow.on_failure(&mut cx, &failure)
        };
        let reply = custom.unwrap_or_else(|| match &failure {
            Failure::Token { message, .. } | Failure::Admin { message } => reply::error(message),
        });
        reply_step(reply, tick.log)
    }
}

fn context<'a>(
    sender: &'a str,
    room_id: &'a str,
    lookup: &'a mut LookupCache,
    config: &'a Config,
    now: Timestamp,
    log: &'a mut Vec<LogLine>,
) -> Context<'a> {
    Context { config, now, lookup, log, sender, room_id }
}

/// Milliseconds as seconds for messages, e.g. `10` or `2.5`. Integer
/// arithmetic keeps float formatting, and its code size, out of the module.
fn seconds_text(millis: u64) -> String {
    let (seconds, rest) = (millis / 1000, millis % 1000);
    if rest == 0 {
        return seconds.to_string();
    }
    let fraction = format!("{rest:03}");
    format!("{seconds}.{}", fraction.trim_end_matches('0'))
}

fn reply_step(reply: Reply, log: &mut Vec<LogLine>) -> Step {
    Step::Reply {
        reply,
        log: std::mem::take(log),
    }
}

/// Responses no flow can act on: server errors, rate limiting, and pages
/// that are not MAS's admin API at all. Returns the reply's message.
fn server_failure(call: &AdminCall, response: &HttpResponse, log: &mut Vec<LogLine>) -> Option<String> {
    let status = response.status;
    let message = if status >= 500 {
        format!("MAS error: HTTP {status} from the admin API. Try again later; details are in the bot's log.")
    } else if status == 429 {
        // Retry-After may also be an HTTP date; only whole seconds are repeated.
        let wait = response
            .retry_after
            .as_deref()
            .map(str::trim)
            .filter(|value| !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()))
            .map(|seconds| format!(" in {seconds} seconds"))
            .unwrap_or_default();
        format!("MAS is rate limiting the bot (HTTP 429). Try again{wait}.")
    } else if status == 404 && !error::is_json(response) {
        "MAS's admin API was not found (HTTP 404). Check `admin_api` in the plugin config (it normally ends in /api/admin) and that a MAS listener serves the `adminapi` resource.".to_owned()
    } else {
        return None;
    };

    log.push(LogLine::new(
        LogLevel::Error,
        format!("{}: HTTP {status} with {}", call.describe(), error::describe_body(response)),
    ));
    Some(message)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::seconds_text;

    #[test]
    fn seconds_text_drops_zero_fractions() {
        assert_eq!(seconds_text(10_000), "10");
        assert_eq!(seconds_text(2_500), "2.5");
        assert_eq!(seconds_text(1_250), "1.25");
        assert_eq!(seconds_text(1), "0.001");
    }
}
