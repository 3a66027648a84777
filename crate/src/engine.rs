//! [`Core`]: the commands in flight and the state they share.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::auth::{authorize, Decision};
use crate::command::{self, Command, GenerateArgs, ListFilter, Parsed, Uses};
use crate::config::{self, Checked};
use crate::flows::{Action, Flow, Generate, ListAll, ListFiltered, Status, Target};
use crate::mas::admin::{NewToken, TokenUpdate};
use crate::protocol::{CommandId, LogLevel, LogLine, Message, Outcome, Step, UnixMillis};
use crate::reply::{self, code, text, Doc};
use crate::runner::{Runner, Shared, Tick};
use crate::time::{self, Expiry, Timestamp};

/// Errors in how the host drives the core, as opposed to failed commands,
/// which become replies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    #[error("no command with ID {0} is in flight")]
    UnknownCommand(CommandId),
    #[error("the host's clock reading {0} ms is out of range")]
    ClockOutOfRange(UnixMillis),
}

/// Page sizes, which the host may lower when its wasm engine is slow (a
/// pure-Python interpreter costs about 2 ms per token on a page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Tokens fetched per group of a `list` reply.
    pub list_page_size: u32,
    /// Tokens per page while searching a token string.
    pub search_page_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            list_page_size: crate::flows::LIST_PAGE_SIZE,
            search_page_size: crate::flows::SEARCH_PAGE_SIZE,
        }
    }
}

impl Limits {
    /// Keeps each size in a range where paging still works: at least 10
    /// list entries and 50 search results, at most the defaults' tenfold.
    fn clamped(self) -> Limits {
        Limits {
            list_page_size: self.list_page_size.clamp(10, 5_000),
            search_page_size: self.search_page_size.clamp(50, 10_000),
        }
    }
}

/// The result of `configure` for the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Configured {
    pub base_command: String,
    pub problems: Vec<String>,
    pub log: Vec<LogLine>,
}

/// The plugin's logic for one bot instance. Commands run concurrently: each
/// has its own [`Runner`], and they share only the config, the access-token
/// state and the lookup cache.
pub struct Core {
    shared: Shared,
    limits: Limits,
    checked: Checked,
    commands: BTreeMap<CommandId, Runner>,
    next_id: CommandId,
}

impl Default for Core {
    fn default() -> Self {
        Core::new()
    }
}

impl Core {
    /// Creates a core that replies to every command that it is not configured yet.
    pub fn new() -> Core {
        let not_configured = vec!["The plugin has not been configured yet.".to_owned()];
        let checked = Checked {
            problems: not_configured.clone(),
            authorization_problems: not_configured,
            ..Checked::default()
        };
        Core {
            shared: Shared::default(),
            limits: Limits::default(),
            checked,
            commands: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// Checks and applies a configuration. The cached access token is kept
    /// only while it was issued for the same endpoint, client and scope.
    pub fn configure(&mut self, value: &Value) -> Configured {
        let checked = config::check(value);

        let old = &self.shared.config;
        let new = &checked.config;
        if old.token_url != new.token_url || old.client_id != new.client_id || old.token_scope != new.token_scope {
            self.shared.access.forget();
        }
        if old.admin_api != new.admin_api {
            self.shared.lookup = Default::default();
        }

        let mut log = Vec::new();
        for problem in &checked.problems {
            log.push(LogLine::new(LogLevel::Warning, format!("configuration: {problem}")));
        }
        for warning in &checked.warnings {
            log.push(LogLine::new(LogLevel::Warning, format!("configuration: {warning}")));
        }

        self.shared.config = checked.config.clone();
        self.checked = checked;
        Configured {
            base_command: self.shared.config.base_command.clone(),
            problems: self.checked.problems.clone(),
            log,
        }
    }

    /// Sets the page sizes for commands started from now on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits.clamped();
    }

    /// Handles a chat message. Returns the command's ID while it waits on
    /// an HTTP request, and the first step.
    pub fn start(&mut self, now_ms: UnixMillis, message: &Message) -> Result<(Option<CommandId>, Step), CoreError> {
        let now = time::from_millis(now_ms).ok_or(CoreError::ClockOutOfRange(now_ms))?;
        let mut log = Vec::new();

        let base_command = &self.shared.config.base_command;
        let parsed = command::parse(&message.body, base_command);
        if parsed == Parsed::NotCommand {
            return Ok((None, Step::Ignore { log }));
        }

        if let Some(reply) = self.gatekeep(message, &mut log) {
            return Ok((None, Step::Reply { reply, log }));
        }

        let command = match parsed {
            Parsed::Command(command) => command,
            Parsed::Invalid(error) => {
                let reply = reply::usage(base_command, &error);
                return Ok((None, Step::Reply { reply, log }));
            }
            Parsed::NotCommand => return Ok((None, Step::Ignore { log })),
        };

        let flow = match self.flow_for(command, now) {
            Ok(flow) => flow,
            Err(reply) => return Ok((None, Step::Reply { reply, log })),
        };

        let mut runner = Runner::new(flow, &message.sender, &message.room_id);
        let tick = Tick { shared: &mut self.shared, now_ms, now, log: &mut log };
        let step = runner.start(tick);
        Ok(self.keep_if_waiting(runner, step))
    }

    /// Passes the outcome of a command's HTTP request back in.
    pub fn resume(&mut self, id: CommandId, now_ms: UnixMillis, outcome: Outcome) -> Result<Step, CoreError> {
        let now = time::from_millis(now_ms).ok_or(CoreError::ClockOutOfRange(now_ms))?;
        let mut runner = self.commands.remove(&id).ok_or(CoreError::UnknownCommand(id))?;

        let mut log = Vec::new();
        let tick = Tick { shared: &mut self.shared, now_ms, now, log: &mut log };
        let step = runner.resume(tick, outcome);
        if matches!(step, Step::Http { .. }) {
            self.commands.insert(id, runner);
        }
        Ok(step)
    }

    /// Drops a command the host gave up on. Returns whether it existed.
    pub fn cancel(&mut self, id: CommandId) -> bool {
        self.commands.remove(&id).is_some()
    }

    /// Returns the number of commands waiting on an HTTP request.
    pub fn in_flight(&self) -> usize {
        self.commands.len()
    }

    fn keep_if_waiting(&mut self, runner: Runner, step: Step) -> (Option<CommandId>, Step) {
        if !matches!(step, Step::Http { .. }) {
            return (None, step);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.commands.insert(id, runner);
        (Some(id), step)
    }

    /// Refuses senders outside both whitelists, and everyone while the
    /// config has problems. Returns the refusal, if any.
    fn gatekeep(&self, message: &Message, log: &mut Vec<LogLine>) -> Option<reply::Reply> {
        if message.internal {
            return (!self.checked.problems.is_empty()).then(|| config_problems_reply(&self.checked.problems));
        }
        // Anyone may be reading this reply, so it names only the whitelist
        // problems: other values could hold a secret pasted into the wrong key.
        if self.checked.authorization_broken() {
            return Some(config_problems_reply(&self.checked.authorization_problems));
        }

        let decision = authorize(&self.shared.config, &message.sender, &message.room_id);
        if decision == Decision::Denied {
            log.push(LogLine::new(
                LogLevel::Info,
                format!("refused a command from {} in {}: not in whitelist or room_whitelist", message.sender, message.room_id),
            ));
            let reply = Doc::new()
                .paragraph(vec![
                    text("Sorry, "),
                    code(message.sender.clone()),
                    text(" is not allowed to manage registration tokens here."),
                ])
                .render(true);
            return Some(reply);
        }

        if !self.checked.problems.is_empty() {
            return Some(config_problems_reply(&self.checked.problems));
        }
        None
    }

    fn flow_for(&self, command: Command, now: Timestamp) -> Result<Box<dyn Flow + Send>, reply::Reply> {
        let config = &self.shared.config;
        let flow: Box<dyn Flow + Send> = match command {
            Command::Help => return Err(reply::help(&config.base_command)),
            Command::Status => Box::new(Status),
            Command::List(ListFilter::All) => Box::new(ListAll::new(self.limits.list_page_size)),
            Command::List(filter) => Box::new(ListFiltered::new(filter, self.limits.list_page_size)),
            Command::Show(name) => Box::new(self.target(name, Action::Show)),
            Command::Revoke(name) => Box::new(self.target(name, Action::Revoke)),
            Command::Unrevoke(name) => Box::new(self.target(name, Action::Unrevoke)),
            Command::Edit { target, uses, expiry } => {
                let update = TokenUpdate {
                    usage_limit: uses.map(usage_limit),
                    expires_at: match expiry {
                        Some(expiry) => Some(expires_at(expiry, now)?),
                        None => None,
                    },
                };
                Box::new(self.target(target, Action::Edit(update)))
            }
            Command::Generate(args) => Box::new(Generate::new(self.new_token(args, now)?)),
        };
        Ok(flow)
    }

    fn target(&self, name: crate::ident::TokenRef, action: Action) -> Target {
        Target::new(name, action, self.limits.search_page_size)
    }

    /// Returns the fields of a new token, with the config's defaults for what the
    /// command left out.
    fn new_token(&self, args: GenerateArgs, now: Timestamp) -> Result<NewToken, reply::Reply> {
        let config = &self.shared.config;
        let uses = match args.uses {
            Some(uses) => usage_limit(uses),
            None => config.default_uses,
        };
        let expiry = match (args.expiry, config.default_expiry_seconds) {
            (Some(expiry), _) => expiry,
            (None, Some(seconds)) => Expiry::After(seconds),
            (None, None) => Expiry::Never,
        };
        Ok(NewToken {
            token: args.token,
            usage_limit: uses,
            expires_at: expires_at(expiry, now)?,
        })
    }
}

fn config_problems_reply(problems: &[String]) -> reply::Reply {
    let mut doc = Doc::new();
    doc.paragraph(vec![text(
        "The bot's configuration has problems; an admin must fix them in maubot's web UI:",
    )]);
    let items = problems.iter().map(|problem| reply::inline_code_spans(problem)).collect();
    doc.list(items);
    doc.render(true)
}

fn usage_limit(uses: Uses) -> Option<u32> {
    match uses {
        Uses::Limited(limit) => Some(limit),
        Uses::Unlimited => None,
    }
}

/// Returns the RFC 3339 expiry for MAS, or `None` for no expiry.
fn expires_at(expiry: Expiry, now: Timestamp) -> Result<Option<String>, reply::Reply> {
    match expiry.resolve(now) {
        Ok(at) => Ok(at.map(time::to_rfc3339)),
        Err(problem) => Err(reply::error(&problem)),
    }
}
