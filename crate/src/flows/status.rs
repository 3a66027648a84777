//! `status`: checks each step between the bot and MAS and says what to fix.
//! It always asks for a new access token, so it also checks the credentials
//! while a cached token is still usable.

use crate::flows::{unexpected_response, unreadable_response, Context, Failure, Flow, FlowStep};
use crate::mas::admin::{AdminCall, Filter, ListQuery};
use crate::mas::model;
use crate::protocol::{HttpResponse, Reply};
use crate::reply::{code, inline_code_spans, strong, text, Doc, Inline};

pub struct Status;

impl Status {
    fn call() -> AdminCall {
        AdminCall::List(ListQuery::count_only(vec![Filter::Valid(true)]))
    }
}

/// The outcome of one check: passed, failed with the fix, or not reached.
enum Check {
    Passed,
    Failed(String),
    NotChecked,
}

impl Check {
    fn from_flag(flag: Option<bool>, message: &str) -> Check {
        match flag {
            Some(true) => Check::Passed,
            Some(false) => Check::Failed(message.to_owned()),
            None => Check::NotChecked,
        }
    }
}

fn check_item(label: Vec<Inline>, check: &Check) -> Vec<Inline> {
    let mut item = match check {
        Check::Passed => vec![text("✅ ")],
        Check::Failed(_) => vec![text("❌ ")],
        Check::NotChecked => vec![text("⏸️ ")],
    };
    item.extend(label);
    match check {
        Check::Passed => {}
        Check::Failed(message) => {
            item.push(text(": "));
            item.extend(inline_code_spans(message));
        }
        Check::NotChecked => item.push(text(": not checked")),
    }
    item
}

fn report(cx: &Context<'_>, checks: [Check; 4], valid_count: Option<u64>) -> Reply {
    let failed = checks.iter().any(|check| matches!(check, Check::Failed(_)));
    let [endpoint, credentials, scope, admin] = checks;

    // With only `mas_url` set, the token endpoint comes from discovery.
    let token_endpoint = if cx.config.token_url.is_empty() {
        format!("{}/.well-known/openid-configuration", cx.config.mas_url)
    } else {
        cx.config.token_url.clone()
    };
    let mut items = vec![
        check_item(vec![text("Token endpoint reachable ("), code(token_endpoint), text(")")], &endpoint),
        check_item(vec![text("Client credentials accepted ("), code(cx.config.client_id.clone()), text(")")], &credentials),
        check_item(vec![text("Scope granted ("), code(cx.config.token_scope.clone()), text(")")], &scope),
        check_item(vec![text("Admin API reachable ("), code(cx.config.admin_api.clone()), text(")")], &admin),
    ];
    if let Some(count) = valid_count {
        let noun = if count == 1 { "token" } else { "tokens" };
        items.push(vec![text(format!("{count} valid registration {noun}"))]);
    }

    let heading = if failed { "MAS connection: problems found" } else { "MAS connection: everything works" };
    Doc::new().paragraph(vec![strong(heading)]).list(items).render(failed)
}

impl Flow for Status {
    fn begin(&mut self, _cx: &mut Context<'_>) -> FlowStep {
        FlowStep::Call(Status::call())
    }

    fn needs_fresh_token(&self) -> bool {
        true
    }

    fn on_response(&mut self, cx: &mut Context<'_>, response: &HttpResponse) -> FlowStep {
        let call = Status::call().describe();
        if response.status != 200 {
            return unexpected_response(cx, &call, response);
        }
        match model::parse_page(&response.body) {
            Ok(page) => {
                let checks = [Check::Passed, Check::Passed, Check::Passed, Check::Passed];
                FlowStep::Done(report(cx, checks, page.count))
            }
            Err(problem) => unreadable_response(cx, &call, problem),
        }
    }

    fn on_failure(&mut self, cx: &mut Context<'_>, failure: &Failure) -> Option<Reply> {
        let checks = match failure {
            Failure::Token { reached, credentials, scope, message } => {
                let endpoint = if *reached { Check::Passed } else { Check::Failed(message.clone()) };
                [
                    endpoint,
                    Check::from_flag(*credentials, message),
                    Check::from_flag(*scope, message),
                    Check::NotChecked,
                ]
            }
            Failure::Admin { message } => [
                Check::Passed,
                Check::Passed,
                Check::Passed,
                Check::Failed(message.clone()),
            ],
        };
        Some(report(cx, checks, None))
    }
}
