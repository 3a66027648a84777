//! Runs one command's flow: gets an access token when the cached one is not
//! usable, retries once with a new token after a 401, and turns transport
//! failures and server errors into replies before the flow sees them.

use crate::access::AccessToken;
use crate::config::Config;
use crate::flows::{Context, Flow, FlowStep, LookupCache};
use crate::mas::admin::AdminCall;
use crate::mas::{error, oauth};
use crate::protocol::{FailureKind, HttpResponse, LogLevel, LogLine, Outcome, Step, TransportFailure, UnixMillis};
use crate::reply;
use crate::time::Timestamp;

/// State shared by every command of one core instance.
#[derive(Debug, Default)]
pub struct Shared {
    pub config: Config,
    pub access: AccessToken,
    pub lookup: LookupCache,
}

/// The request a command is waiting on.
#[derive(Debug)]
enum Pending {
    /// A token request, to be followed by `then`.
    Token { then: AdminCall, retried: bool },
    /// An admin API call; `retried` is true once it was sent again after a 401.
    Admin { call: AdminCall, retried: bool },
    Nothing,
}

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
        let Tick { shared, now_ms, now, log } = tick;
        let mut cx = Context {
            config: &shared.config,
            now,
            lookup: &mut shared.lookup,
            log: &mut *log,
            sender: &self.sender,
            room_id: &self.room_id,
        };
        let step = self.flow.begin(&mut cx);
        self.advance(&shared.config, &shared.access, now_ms, step, log)
    }

    pub fn resume(&mut self, tick: Tick<'_>, outcome: Outcome) -> Step {
        let Tick { shared, now_ms, now, log } = tick;
        let pending = std::mem::replace(&mut self.pending, Pending::Nothing);

        let response = match outcome {
            Outcome::Response(response) => response,
            Outcome::Failure(failure) => return transport_failure(&pending, &failure, &shared.config, log),
        };

        match pending {
            Pending::Nothing => {
                log.push(LogLine::new(LogLevel::Error, "received a response while no request was pending"));
                reply_step(reply::error("Internal error: unexpected response; details are in the bot's log."), log)
            }
            Pending::Token { then, retried } => {
                let config = &shared.config;
                match oauth::read_token_response(&response, &config.token_scope) {
                    Ok(expires_in) => {
                        shared.access.store(now_ms, expires_in);
                        self.send_admin(config, then, retried, log)
                    }
                    Err(problem) => {
                        log.push(LogLine::new(
                            LogLevel::Error,
                            format!("access token request failed: {}", oauth::describe_failure(&response)),
                        ));
                        reply_step(reply::error(&problem.to_string()), log)
                    }
                }
            }
            Pending::Admin { call, retried } => {
                if response.status == 401 {
                    shared.access.forget();
                    return self.on_unauthorized(&shared.config, call, retried, &response, log);
                }
                if let Some(message) = server_failure(&call, &response, log) {
                    return reply_step(reply::error(&message), log);
                }

                let mut cx = Context {
                    config: &shared.config,
                    now,
                    lookup: &mut shared.lookup,
                    log,
                    sender: &self.sender,
                    room_id: &self.room_id,
                };
                let step = self.flow.on_response(&mut cx, &response);
                self.advance(&shared.config, &shared.access, now_ms, step, log)
            }
        }
    }

    fn advance(
        &mut self,
        config: &Config,
        access: &AccessToken,
        now_ms: UnixMillis,
        step: FlowStep,
        log: &mut Vec<LogLine>,
    ) -> Step {
        match step {
            FlowStep::Done(reply) => reply_step(reply, log),
            FlowStep::Call(call) if access.is_usable(now_ms) => self.send_admin(config, call, false, log),
            FlowStep::Call(call) => self.send_token_request(config, call, false, log),
        }
    }

    fn send_admin(&mut self, config: &Config, call: AdminCall, retried: bool, log: &mut Vec<LogLine>) -> Step {
        log.push(LogLine::new(LogLevel::Debug, call.describe()));
        let request = call.to_request(&config.admin_api, config.http_timeout_ms);
        self.pending = Pending::Admin { call, retried };
        Step::Http {
            request,
            log: std::mem::take(log),
        }
    }

    fn send_token_request(&mut self, config: &Config, then: AdminCall, retried: bool, log: &mut Vec<LogLine>) -> Step {
        log.push(LogLine::new(LogLevel::Debug, "requesting an access token"));
        let request = oauth::token_request(&config.token_url, &config.token_scope, config.http_timeout_ms);
        self.pending = Pending::Token { then, retried };
        Step::Http {
            request,
            log: std::mem::take(log),
        }
    }

    /// A 401 means the access token expired or was revoked: get a new one
    /// and send the call again, once.
    fn on_unauthorized(
        &mut self,
        config: &Config,
        call: AdminCall,
        retried: bool,
        response: &HttpResponse,
        log: &mut Vec<LogLine>,
    ) -> Step {
        let title = error::first_title(&response.body).unwrap_or_else(|| "no reason given".to_owned());
        if !retried {
            log.push(LogLine::new(
                LogLevel::Warning,
                format!("{}: MAS answered 401 ({title}); retrying once with a new access token", call.describe()),
            ));
            return self.send_token_request(config, call, true, log);
        }

        log.push(LogLine::new(
            LogLevel::Error,
            format!("{}: MAS answered 401 ({title}) to a new access token", call.describe()),
        ));
        let message = if title.contains("scope") {
            format!("MAS rejected the bot's access token: {title}. Add the bot's `client_id` to `policy.data.admin_clients` in MAS's config and restart MAS.")
        } else {
            format!("MAS rejected a freshly issued access token: {title}. Check that `token_url` and `admin_api` point at the same MAS.")
        };
        reply_step(reply::error(&message), log)
    }
}

fn reply_step(reply: crate::protocol::Reply, log: &mut Vec<LogLine>) -> Step {
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
        let wait = response
            .retry_after
            .as_deref()
            .map(|seconds| format!(" in {} seconds", seconds.trim()))
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

fn transport_failure(pending: &Pending, failure: &TransportFailure, config: &Config, log: &mut Vec<LogLine>) -> Step {
    let target = match pending {
        Pending::Token { .. } => "the token endpoint".to_owned(),
        Pending::Admin { call, .. } => call.describe(),
        Pending::Nothing => "no pending request".to_owned(),
    };
    log.push(LogLine::new(
        LogLevel::Error,
        format!("{target}: {:?} failure: {}", failure.kind, failure.message),
    ));

    let message = match failure.kind {
        FailureKind::Timeout => format!(
            "MAS error: no answer within {} seconds. Check that MAS is running and reachable from the bot.",
            config.http_timeout_ms as f64 / 1000.0
        ),
        FailureKind::Connection => "MAS error: could not connect to MAS or read its answer. Check `admin_api` and `token_url` and that MAS is running; details are in the bot's log.".to_owned(),
    };
    reply_step(reply::error(&message), log)
}
