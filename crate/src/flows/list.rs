//! Plain `list`: the valid tokens from the oldest and the invalid tokens
//! from the newest, with MAS's counts. Two requests, whatever the number of
//! tokens, because the reply can only show what fits in one event anyway.

use crate::flows::{unexpected_response, unreadable_response, Context, Flow, FlowStep};
use crate::mas::admin::{AdminCall, Filter, ListQuery, PageSpec};
use crate::mas::model::{self, Page};
use crate::protocol::HttpResponse;
use crate::reply::{list::Group, token_list};

/// Tokens fetched per group: more than one event can show.
pub const LIST_PAGE_SIZE: u32 = 500;

pub struct ListAll {
    valid: Option<Page>,
}

impl ListAll {
    pub fn new() -> ListAll {
        ListAll { valid: None }
    }

    fn call(&self) -> AdminCall {
        let (valid, page) = match self.valid {
            None => (true, PageSpec::First { size: LIST_PAGE_SIZE, after: None }),
            Some(_) => (false, PageSpec::Last { size: LIST_PAGE_SIZE }),
        };
        AdminCall::List(ListQuery {
            filter: Some(Filter::Valid(valid)),
            count: true,
            page,
        })
    }
}

impl Flow for ListAll {
    fn begin(&mut self, _cx: &mut Context<'_>) -> FlowStep {
        FlowStep::Call(self.call())
    }

    fn on_response(&mut self, cx: &mut Context<'_>, response: &HttpResponse) -> FlowStep {
        let call = self.call().describe();
        if response.status != 200 {
            return unexpected_response(cx, &call, response);
        }
        let mut page = match model::parse_page(&response.body) {
            Ok(page) => page,
            Err(problem) => return unreadable_response(cx, &call, problem),
        };
        for token in &page.tokens {
            cx.lookup.remember(&token.token, token.id);
        }

        let Some(valid) = self.valid.take() else {
            self.valid = Some(page);
            return FlowStep::Call(self.call());
        };

        // `page[last]` returns the newest tokens in ascending order; show them newest first.
        page.tokens.reverse();
        let groups = [
            Group {
                title: "Valid",
                total: valid.count.unwrap_or(valid.tokens.len() as u64),
                tokens: &valid.tokens,
            },
            Group {
                title: "Invalid",
                total: page.count.unwrap_or(page.tokens.len() as u64),
                tokens: &page.tokens,
            },
        ];
        FlowStep::Done(token_list(&groups, &cx.config.base_command, cx.now))
    }
}
