//! Commands on one named token: show, edit, revoke or unrevoke it.
//!
//! A name that parses as a ULID is tried as an ID first. A name MAS does not
//! know as an ID, and any other name, is looked up by token string: first in
//! the lookup cache, then by walking the list with `page[after]` cursors until
//! a token's string matches exactly. MAS has no lookup by string, and its
//! `links.next` is a path from the server root that misses any reverse-proxy
//! prefix in `admin_api`, so the walk builds each next request itself.

use ulid::Ulid;

use crate::flows::{unexpected_response, unreadable_response, Context, Flow, FlowStep};
use crate::ident::TokenRef;
use crate::mas::admin::{AdminCall, Count, ListQuery, PageSpec, TokenUpdate};
use crate::mas::error;
use crate::mas::model::{self, RegistrationToken};
use crate::protocol::{HttpResponse, LogLevel};
use crate::reply::{self, code, strong, text, token_details, Doc, Status};
use crate::reply::token::{expiry, uses};

/// Tokens per page while searching by string, by default. MAS has no
/// maximum page size; larger pages mean fewer round trips but more memory
/// and core time per response.
pub const SEARCH_PAGE_SIZE: u32 = 1000;

/// Pages walked before giving up, so a misbehaving server cannot keep a
/// command alive forever (ten million tokens at the page size above).
const MAX_SEARCH_PAGES: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Show,
    /// Changes the usage limit or expiry; refused for revoked tokens.
    Edit(TokenUpdate),
    Revoke,
    Unrevoke,
}

impl Action {
    /// Returns the first call on an ID: revoke and unrevoke act at once, while show
    /// and edit read the token first.
    fn lookup_call(&self, id: Ulid) -> AdminCall {
        match self {
            Action::Show | Action::Edit(_) => AdminCall::Get(id),
            Action::Revoke => AdminCall::Revoke(id),
            Action::Unrevoke => AdminCall::Unrevoke(id),
        }
    }

    /// Returns the call that makes the change, once the token is known.
    fn change_call(&self, id: Ulid) -> AdminCall {
        match self {
            Action::Edit(update) => AdminCall::Update(id, update.clone()),
            other => other.lookup_call(id),
        }
    }

    fn reads_first(&self) -> bool {
        matches!(self, Action::Show | Action::Edit(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Acting on an ID: the name itself, or one the cache remembered.
    ById { id: Ulid, from_cache: bool },
    /// Walking the list; `after` is the last ID of the previous page.
    Searching { after: Option<Ulid>, pages: u32 },
    /// Acting on the ID that the search found.
    Found { id: Ulid },
}

pub struct Target {
    search_page_size: u32,
    name: TokenRef,
    action: Action,
    phase: Phase,
    /// The token as it was before an edit, for the reply and the audit line.
    before: Option<RegistrationToken>,
}

impl Target {
    pub fn new(name: TokenRef, action: Action, search_page_size: u32) -> Target {
        Target {
            search_page_size,
            name,
            action,
            phase: Phase::Searching { after: None, pages: 0 },
            before: None,
        }
    }

    fn current_call(&self) -> AdminCall {
        match self.phase {
            Phase::ById { id, .. } => self.action.lookup_call(id),
            Phase::Found { id } => self.action.change_call(id),
            Phase::Searching { after, .. } => AdminCall::List(ListQuery {
                filters: Vec::new(),
                count: Count::Skip,
                page: PageSpec::First { size: self.search_page_size, after },
            }),
        }
    }

    /// Continues once the token is known from a read or a search.
    fn on_token_known(&mut self, cx: &mut Context<'_>, token: RegistrationToken) -> FlowStep {
        cx.lookup.remember(&token.token, token.id);
        match self.action {
            Action::Show => FlowStep::Done(self.success(cx, &token)),
            Action::Edit(_) if token.revoked_at.is_some() => {
                let reply = Doc::new()
                    .paragraph(vec![
                        text("Token "),
                        code(reply::echo(&self.name.text)),
                        text(" is revoked, so it was not edited. Unrevoke it first if it should be usable again."),
                    ])
                    .render(true);
                FlowStep::Done(reply)
            }
            Action::Edit(ref update) if !changes_anything(update, &token) => {
                let reply = Doc::new()
                    .paragraph(vec![
                        text("Token "),
                        code(reply::echo(&self.name.text)),
                        text(" already has these settings; nothing changed."),
                    ])
                    .list(token_details(&token, cx.now))
                    .render(false);
                FlowStep::Done(reply)
            }
            _ => {
                let id = token.id;
                self.before = Some(token);
                self.step(Phase::Found { id })
            }
        }
    }

    fn step(&mut self, phase: Phase) -> FlowStep {
        self.phase = phase;
        FlowStep::Call(self.current_call())
    }

    fn search(&mut self) -> FlowStep {
        self.step(Phase::Searching { after: None, pages: 0 })
    }

    fn not_found(&self) -> FlowStep {
        let reply = Doc::new()
            .paragraph(vec![
                text("Token "),
                code(reply::echo(&self.name.text)),
                text(" not found: no registration token has that token string or ID. Token strings are case-sensitive."),
            ])
            .render(true);
        FlowStep::Done(reply)
    }

    fn on_id_response(
        &mut self,
        cx: &mut Context<'_>,
        response: &HttpResponse,
        from_cache: bool,
    ) -> FlowStep {
        if response.status == 404 {
            if from_cache {
                cx.lookup.forget(&self.name.text);
            }
            cx.log(
                LogLevel::Debug,
                format!("{}: not found by ID, searching by token string", self.current_call().describe()),
            );
            return self.search();
        }
        if !self.action.reads_first() {
            return self.on_action_response(cx, response);
        }

        let call = self.current_call().describe();
        match response.status {
            200 => match model::parse_single(&response.body) {
                Ok(token) => self.on_token_known(cx, token),
                Err(problem) => unreadable_response(cx, &call, problem),
            },
            _ => unexpected_response(cx, &call, response),
        }
    }

    fn on_search_response(
        &mut self,
        cx: &mut Context<'_>,
        response: &HttpResponse,
        pages: u32,
    ) -> FlowStep {
        let call = self.current_call().describe();
        if response.status != 200 {
            return unexpected_response(cx, &call, response);
        }
        let page = match model::parse_page_ids(&response.body) {
            Ok(page) => page,
            Err(problem) => return unreadable_response(cx, &call, problem),
        };

        let mut found = None;
        for (id, token) in &page.entries {
            cx.lookup.remember(token, *id);
            if found.is_none() && *token == self.name.text {
                found = Some(*id);
            }
        }

        if let Some(id) = found {
            // Only the page with the match is read in full.
            let full = match model::parse_page(&response.body) {
                Ok(full) => full,
                Err(problem) => return unreadable_response(cx, &call, problem),
            };
            if let Some(token) = full.tokens.into_iter().find(|token| token.id == id) {
                return self.on_token_known(cx, token);
            }
        }

        let Some(last) = page.entries.last().map(|(id, _)| *id) else {
            return self.not_found();
        };
        if !page.has_next {
            return self.not_found();
        }

        let previous = match self.phase {
            Phase::Searching { after, .. } => after,
            _ => None,
        };
        if previous.is_some_and(|previous| last <= previous) || pages + 1 >= MAX_SEARCH_PAGES {
            cx.log(
                LogLevel::Error,
                format!("{call}: the list did not advance (last ID {last}); stopping the search"),
            );
            return FlowStep::Done(reply::error(
                "MAS error: the token list did not advance while searching; details are in the bot's log.",
            ));
        }
        self.step(Phase::Searching {
            after: Some(last),
            pages: pages + 1,
        })
    }

    fn on_action_response(&mut self, cx: &mut Context<'_>, response: &HttpResponse) -> FlowStep {
        let call = self.current_call().describe();
        match response.status {
            200 => match model::parse_single(&response.body) {
                Ok(token) => FlowStep::Done(self.success(cx, &token)),
                Err(problem) => unreadable_response(cx, &call, problem),
            },
            404 => self.not_found(),
            400 => self.on_bad_request(cx, &call, response),
            _ => unexpected_response(cx, &call, response),
        }
    }

    /// Handles a 400, which MAS returns when revoking a revoked token or unrevoking an active one.
    fn on_bad_request(&mut self, cx: &mut Context<'_>, call: &str, response: &HttpResponse) -> FlowStep {
        let title = error::first_title(&response.body).unwrap_or_default();
        let state = match self.action {
            Action::Revoke if title.contains("already revoked") => "is already revoked",
            Action::Unrevoke if title.contains("not revoked") => "is not revoked",
            _ => return unexpected_response(cx, call, response),
        };
        let reply = Doc::new()
            .paragraph(vec![
                text("Token "),
                code(reply::echo(&self.name.text)),
                text(format!(" {state}; nothing changed.")),
            ])
            .render(true);
        FlowStep::Done(reply)
    }

    fn success(&self, cx: &mut Context<'_>, token: &RegistrationToken) -> reply::Reply {
        cx.lookup.remember(&token.token, token.id);

        let heading = match &self.action {
            Action::Show => vec![strong("Registration token")],
            Action::Edit(_) => {
                let changes = self.describe_changes(token, cx.now);
                cx.audit(format_args!("edited token {}: {changes}", token.id));
                vec![strong("Updated"), text(format!(" the registration token: {changes}."))]
            }
            Action::Revoke => {
                cx.audit(format_args!("revoked token {}", token.id));
                vec![strong("Revoked"), text(" the registration token. Its latest state in MAS:")]
            }
            Action::Unrevoke => {
                cx.audit(format_args!("unrevoked token {}", token.id));
                let mut heading = vec![strong("Unrevoked"), text(" the registration token.")];
                let status = Status::of(token, cx.now);
                if status != Status::Active {
                    heading.push(text(format!(
                        " MAS still rejects it for registration: it is {}.",
                        status.label()
                    )));
                }
                heading
            }
        };
        Doc::new()
            .paragraph(heading)
            .list(token_details(token, cx.now))
            .render(false)
    }
}

/// Returns whether `update` would change `token`, so that an edit to the current
/// values sends no request and logs no audit line.
fn changes_anything(update: &TokenUpdate, token: &RegistrationToken) -> bool {
    let uses_change = update.usage_limit.is_some_and(|limit| limit != token.usage_limit);
    let expiry_change = update
        .expires_at
        .as_ref()
        .is_some_and(|expiry| *expiry != token.expires_at.map(crate::time::to_rfc3339));
    uses_change || expiry_change
}

impl Target {
    /// `uses 0 / 5 → 0 / 10, expires never → 2027-01-31 00:00 UTC`, from the
    /// token before and after the edit.
    fn describe_changes(&self, after: &RegistrationToken, now: crate::time::Timestamp) -> String {
        let Some(before) = &self.before else {
            return "changed".to_owned();
        };
        let mut changes = Vec::new();
        if before.usage_limit != after.usage_limit {
            changes.push(format!("uses {} → {}", uses(before), uses(after)));
        }
        if before.expires_at != after.expires_at {
            changes.push(format!("expires {} → {}", expiry(before, now), expiry(after, now)));
        }
        if changes.is_empty() {
            "nothing changed".to_owned()
        } else {
            changes.join(", ")
        }
    }
}

impl Flow for Target {
    fn begin(&mut self, cx: &mut Context<'_>) -> FlowStep {
        if let Some(id) = self.name.ulid {
            return self.step(Phase::ById { id, from_cache: false });
        }
        if let Some(id) = cx.lookup.get(&self.name.text) {
            return self.step(Phase::ById { id, from_cache: true });
        }
        self.search()
    }

    fn on_response(&mut self, cx: &mut Context<'_>, response: &HttpResponse) -> FlowStep {
        match self.phase {
            Phase::ById { from_cache, .. } => self.on_id_response(cx, response, from_cache),
            Phase::Searching { pages, .. } => self.on_search_response(cx, response, pages),
            Phase::Found { .. } => self.on_action_response(cx, response),
        }
    }
}
