//! `list` without a token: every token with a summary, or the tokens in one state.
//!
//! The cost does not grow with the number of tokens: MAS counts, and each
//! group is one bounded page, because the reply can only show what fits in
//! one event anyway.

use crate::command::ListFilter;
use crate::flows::{unexpected_response, unreadable_response, Context, Flow, FlowStep};
use crate::mas::admin::{AdminCall, Count, Filter, ListQuery, PageSpec};
use crate::mas::model::{self, Page};
use crate::protocol::HttpResponse;
use crate::reply::{list::Group, token_list};

/// Tokens fetched per group by default. One event shows about 250 entries
/// (see `MAX_REPLY_BYTES`), so larger pages would be parsed for nothing.
pub const LIST_PAGE_SIZE: u32 = 300;

/// The requests of a plain `list`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The oldest valid tokens, with their count.
    Valid,
    /// The newest invalid tokens, with their count.
    Invalid,
    /// The number of revoked tokens.
    Revoked,
    /// The number of expired tokens that are not revoked.
    Expired,
}

/// Plain `list`: a summary line (active, revoked, expired, used up), the
/// valid tokens from the oldest, and the invalid tokens from the newest.
pub struct ListAll {
    page_size: u32,
    stage: Stage,
    valid: Option<Page>,
    invalid: Option<Page>,
    revoked: u64,
}

impl ListAll {
    pub fn new(page_size: u32) -> ListAll {
        ListAll { page_size, stage: Stage::Valid, valid: None, invalid: None, revoked: 0 }
    }

    fn call(&self) -> AdminCall {
        let query = match self.stage {
            Stage::Valid => ListQuery {
                filters: vec![Filter::Valid(true)],
                count: Count::Include,
                page: PageSpec::First { size: self.page_size, after: None },
            },
            Stage::Invalid => ListQuery {
                filters: vec![Filter::Valid(false)],
                count: Count::Include,
                page: PageSpec::Last { size: self.page_size },
            },
            Stage::Revoked => ListQuery::count_only(vec![Filter::Revoked(true)]),
            Stage::Expired => ListQuery::count_only(vec![Filter::Expired(true), Filter::Revoked(false)]),
        };
        AdminCall::List(query)
    }

    fn next(&mut self, stage: Stage) -> FlowStep {
        self.stage = stage;
        FlowStep::Call(self.call())
    }

    fn finish(&mut self, cx: &mut Context<'_>, expired: u64) -> FlowStep {
        let valid = self.valid.take().unwrap_or_default();
        let mut invalid = self.invalid.take().unwrap_or_default();
        // `page[last]` returns the newest tokens in ascending order; show them newest first.
        invalid.tokens.reverse();

        let valid_total = total(&valid);
        let invalid_total = total(&invalid);
        let used_up = invalid_total.saturating_sub(self.revoked).saturating_sub(expired);
        let summary = format!(
            "{valid_total} active, {} revoked, {expired} expired, {used_up} used up",
            self.revoked
        );
        let groups = [
            Group { title: "Valid".to_owned(), total: valid_total, tokens: &valid.tokens },
            Group { title: "Invalid, newest first".to_owned(), total: invalid_total, tokens: &invalid.tokens },
        ];
        FlowStep::Done(token_list(&summary, &groups, &cx.config.base_command, cx.now))
    }
}

fn total(page: &Page) -> u64 {
    page.count.unwrap_or(page.tokens.len() as u64)
}

/// Reads a list page and remembers its token strings, or returns the
/// step that ends the command when the response is not a page.
fn read_page(cx: &mut Context<'_>, call: &AdminCall, response: &HttpResponse) -> Result<Page, FlowStep> {
    let call = call.describe();
    if response.status != 200 {
        return Err(unexpected_response(cx, &call, response));
    }
    let page = model::parse_page(&response.body).map_err(|problem| unreadable_response(cx, &call, problem))?;
    for token in &page.tokens {
        cx.lookup.remember(&token.token, token.id);
    }
    Ok(page)
}

impl Flow for ListAll {
    fn begin(&mut self, _cx: &mut Context<'_>) -> FlowStep {
        FlowStep::Call(self.call())
    }

    fn on_response(&mut self, cx: &mut Context<'_>, response: &HttpResponse) -> FlowStep {
        let page = match read_page(cx, &self.call(), response) {
            Ok(page) => page,
            Err(step) => return step,
        };

        match self.stage {
            Stage::Valid => {
                self.valid = Some(page);
                self.next(Stage::Invalid)
            }
            Stage::Invalid => {
                let any_invalid = total(&page) > 0;
                self.invalid = Some(page);
                if any_invalid {
                    self.next(Stage::Revoked)
                } else {
                    self.finish(cx, 0)
                }
            }
            Stage::Revoked => {
                self.revoked = page.count.unwrap_or(0);
                self.next(Stage::Expired)
            }
            Stage::Expired => self.finish(cx, page.count.unwrap_or(0)),
        }
    }
}

/// `list valid|invalid|revoked|expired|used|unused`: the newest matching
/// tokens with their count, in one request.
pub struct ListFiltered {
    filter: ListFilter,
    page_size: u32,
}

impl ListFiltered {
    pub fn new(filter: ListFilter, page_size: u32) -> ListFiltered {
        ListFiltered { filter, page_size }
    }

    fn parts(&self) -> (Vec<Filter>, &'static str) {
        match self.filter {
            ListFilter::All | ListFilter::Valid => (vec![Filter::Valid(true)], "Valid"),
            ListFilter::Invalid => (vec![Filter::Valid(false)], "Invalid"),
            ListFilter::Revoked => (vec![Filter::Revoked(true)], "Revoked"),
            ListFilter::Expired => (vec![Filter::Expired(true)], "Expired"),
            ListFilter::Used => (vec![Filter::Used(true)], "Used"),
            ListFilter::Unused => (vec![Filter::Used(false)], "Unused"),
        }
    }

    fn call(&self) -> AdminCall {
        AdminCall::List(ListQuery {
            filters: self.parts().0,
            count: Count::Include,
            page: PageSpec::Last { size: self.page_size },
        })
    }
}

impl Flow for ListFiltered {
    fn begin(&mut self, _cx: &mut Context<'_>) -> FlowStep {
        FlowStep::Call(self.call())
    }

    fn on_response(&mut self, cx: &mut Context<'_>, response: &HttpResponse) -> FlowStep {
        let mut page = match read_page(cx, &self.call(), response) {
            Ok(page) => page,
            Err(step) => return step,
        };
        page.tokens.reverse();

        let name = self.parts().1;
        let count = total(&page);
        let summary = format!("{count} {}", name.to_ascii_lowercase());
        let groups = [Group { title: format!("{name}, newest first"), total: count, tokens: &page.tokens }];
        FlowStep::Done(token_list(&summary, &groups, &cx.config.base_command, cx.now))
    }
}
