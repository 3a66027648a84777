//! The reply to `list`: a summary, then as many entries as fit in one event.

use crate::mas::model::RegistrationToken;
use crate::reply::token::token_entry;
use crate::reply::{encoded_size, strong, text, Doc, Inline, MAX_REPLY_BYTES};
use crate::protocol::Reply;
use crate::time::Timestamp;

/// One group of the list: MAS's total for it and the tokens fetched.
pub struct Group<'a> {
    pub title: String,
    /// The number of tokens in the group, from MAS's `meta.count`.
    pub total: u64,
    pub tokens: &'a [RegistrationToken],
}

/// Room kept for the closing "not shown" line, in bytes.
const FOOTER_RESERVE: usize = 600;

/// Renders the groups in order, adding entries while the reply stays under
/// [`MAX_REPLY_BYTES`], and says how many entries were left out and how to
/// see a single token.
pub fn token_list(summary: &str, groups: &[Group<'_>], base_command: &str, now: Timestamp) -> Reply {
    let mut doc = Doc::new();
    doc.paragraph(vec![strong("Registration tokens"), text(format!(": {summary}"))]);

    let total: u64 = groups.iter().map(|group| group.total).sum();
    if total == 0 {
        doc.paragraph(vec![
            text("None to show. Create a token with "),
            crate::reply::code(format!("!{base_command} generate")),
            text("."),
        ]);
        return doc.render(false);
    }

    let mut used = encoded_size(&doc.render(false)) + FOOTER_RESERVE;
    let mut shown: u64 = 0;
    for group in groups.iter().filter(|group| group.total > 0) {
        let heading = vec![strong(format!("{} ({})", group.title, group.total))];
        used += encoded_size(&Doc::new().paragraph(heading.clone()).render(false));
        if used > MAX_REPLY_BYTES {
            break;
        }

        let mut items: Vec<Vec<Inline>> = Vec::new();
        for token in group.tokens {
            let item = token_entry(token, now);
            let size = encoded_size(&Doc::new().list(vec![item.clone()]).render(false));
            if used + size > MAX_REPLY_BYTES {
                break;
            }
            used += size;
            items.push(item);
        }

        shown += items.len() as u64;
        doc.paragraph(heading);
        if !items.is_empty() {
            doc.list(items);
        }
    }

    let hidden = total.saturating_sub(shown);
    let mut footer = Vec::new();
    if hidden > 0 {
        footer.push(text(format!("{hidden} more not shown. ")));
    }
    footer.push(text("Details of one token: "));
    footer.push(crate::reply::code(format!("!{base_command} list <token|ULID>")));
    doc.paragraph(footer);

    doc.render(false)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::time::from_millis;

    fn now() -> Timestamp {
        from_millis(1_796_414_400_000).expect("in range")
    }

    fn tokens(count: usize, valid: bool) -> Vec<RegistrationToken> {
        (0..count)
            .map(|index| RegistrationToken {
                id: ulid::Ulid::from_parts(1_796_414_400_000 + index as u64, index as u128),
                token: format!("token{index:07}"),
                valid,
                usage_limit: Some(3),
                times_used: if valid { 0 } else { 3 },
                created_at: now(),
                last_used_at: None,
                expires_at: None,
                revoked_at: None,
            })
            .collect()
    }

    #[test]
    fn small_lists_show_every_token() {
        let valid = tokens(25, true);
        let groups = [
            Group { title: "Valid".to_owned(), total: 25, tokens: &valid },
            Group { title: "Invalid".to_owned(), total: 0, tokens: &[] },
        ];
        let reply = token_list("25 active", &groups, "token", now());
        for token in &valid {
            assert!(reply.body.contains(&token.token), "{} missing", token.token);
        }
        assert!(reply.body.starts_with("Registration tokens: 25 active"));
        assert!(!reply.body.contains("more not shown"));
    }

    #[test]
    fn large_lists_fit_one_event() {
        let valid = tokens(2000, true);
        let invalid = tokens(2000, false);
        let groups = [
            Group { title: "Valid".to_owned(), total: 6000, tokens: &valid },
            Group { title: "Invalid".to_owned(), total: 4000, tokens: &invalid },
        ];
        let reply = token_list("6000 active, 4000 used up", &groups, "token", now());
        assert!(encoded_size(&reply) <= MAX_REPLY_BYTES, "{}", encoded_size(&reply));
        assert!(reply.body.contains("more not shown"));
        assert!(reply.body.starts_with("Registration tokens: 6000 active, 4000 used up"));
    }

    #[test]
    fn empty_list_says_how_to_create() {
        let groups = [Group { title: "Valid".to_owned(), total: 0, tokens: &[] }];
        let reply = token_list("0 active", &groups, "regtoken", now());
        assert!(reply.body.contains("!regtoken generate"));
    }
}
