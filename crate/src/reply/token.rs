//! One registration token, in detail or as a list entry.

use crate::mas::model::RegistrationToken;
use crate::reply::{code, text, Inline};
use crate::time::{to_display, to_display_relative, Timestamp};

/// The reason a token can or cannot be used, in the order the reasons are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Revoked,
    Expired,
    UsedUp,
    /// MAS marks the token invalid for a reason the core cannot see.
    Invalid,
}

impl Status {
    /// MAS's `valid` flag decides validity; the reason for an invalid token
    /// comes from its fields, checked against `now`.
    pub fn of(token: &RegistrationToken, now: Timestamp) -> Status {
        if token.valid {
            return Status::Active;
        }
        if token.revoked_at.is_some() {
            return Status::Revoked;
        }
        if token.expires_at.is_some_and(|expiry| expiry <= now) {
            return Status::Expired;
        }
        if token
            .usage_limit
            .is_some_and(|limit| token.times_used >= u64::from(limit))
        {
            return Status::UsedUp;
        }
        Status::Invalid
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
            Status::UsedUp => "used up",
            Status::Invalid => "invalid",
        }
    }
}

/// Returns the token string as a code span, or a visible label for an empty string.
pub fn token_string(token: &RegistrationToken) -> Inline {
    if token.token.is_empty() {
        text("(empty token string)")
    } else {
        code(token.token.clone())
    }
}

/// `times_used / usage_limit`, with `unlimited` for a null limit.
pub fn uses(token: &RegistrationToken) -> String {
    match token.usage_limit {
        Some(limit) => format!("{} / {limit}", token.times_used),
        None => format!("{} / unlimited", token.times_used),
    }
}

fn optional_time(time: Option<Timestamp>, none: &str, now: Timestamp) -> String {
    time.map_or_else(|| none.to_owned(), |time| to_display_relative(time, now))
}

/// Formats the expiry for people: `never`, or the time and how far away it is.
pub fn expiry(token: &RegistrationToken, now: Timestamp) -> String {
    optional_time(token.expires_at, "never", now)
}

/// Returns the detail lines of one token, for a bullet list.
pub fn token_details(token: &RegistrationToken, now: Timestamp) -> Vec<Vec<Inline>> {
    vec![
        vec![text("Token: "), token_string(token)],
        vec![text("ID: "), code(token.id.to_string())],
        vec![text(format!("Status: {}", Status::of(token, now).label()))],
        vec![text(format!("Uses: {}", uses(token)))],
        vec![text(format!("Expires: {}", expiry(token, now)))],
        vec![text(format!("Created: {}", to_display_relative(token.created_at, now)))],
        vec![text(format!("Last used: {}", optional_time(token.last_used_at, "never", now)))],
        vec![text(format!("Revoked: {}", optional_time(token.revoked_at, "no", now)))],
    ]
}

/// Returns one line of a token list: string, ID, uses, expiry, and the status when
/// the token is not active.
pub fn token_entry(token: &RegistrationToken, now: Timestamp) -> Vec<Inline> {
    let status = Status::of(token, now);
    let mut line = vec![token_string(token), text(" · "), code(token.id.to_string())];
    if status != Status::Active {
        line.push(text(format!(" · {}", status.label())));
    }
    line.push(text(format!(" · {} uses", uses(token))));
    let expiry = match token.expires_at {
        Some(time) if time <= now => format!(" · expired {}", to_display(time)),
        Some(time) => format!(" · expires {}", to_display_relative(time, now)),
        None => " · never expires".to_owned(),
    };
    line.push(text(expiry));
    line
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::reply::Doc;
    use crate::time::from_millis;

    fn now() -> Timestamp {
        from_millis(1_796_414_400_000).expect("in range") // 2026-12-04 20:00 UTC
    }

    fn token() -> RegistrationToken {
        RegistrationToken {
            id: "01M9193JHNC5JD0Y75TZ19448T".parse().expect("valid ULID"),
            token: "abc123def456".to_owned(),
            valid: true,
            usage_limit: None,
            times_used: 0,
            created_at: now(),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn null_fields_read_as_words() {
        let reply = Doc::new().list(token_details(&token(), now())).render(false);
        for expected in ["0 / unlimited", "Expires: never", "Last used: never", "Revoked: no", "Status: active"] {
            assert!(reply.body.contains(expected), "{expected} missing from {}", reply.body);
        }
        for unwanted in ["None", "null"] {
            assert!(!reply.body.contains(unwanted));
            assert!(!reply.html.contains(unwanted));
        }
    }

    #[test]
    fn status_reasons_in_order() {
        let mut revoked = token();
        revoked.valid = false;
        revoked.revoked_at = Some(now());
        revoked.expires_at = Some(now());
        assert_eq!(Status::of(&revoked, now()), Status::Revoked);

        let mut expired = token();
        expired.valid = false;
        expired.expires_at = Some(now());
        assert_eq!(Status::of(&expired, now()), Status::Expired);

        let mut used_up = token();
        used_up.valid = false;
        used_up.usage_limit = Some(2);
        used_up.times_used = 2;
        assert_eq!(Status::of(&used_up, now()), Status::UsedUp);

        let mut zero_limit = token();
        zero_limit.valid = false;
        zero_limit.usage_limit = Some(0);
        assert_eq!(Status::of(&zero_limit, now()), Status::UsedUp);

        assert_eq!(Status::of(&token(), now()), Status::Active);
    }

    #[test]
    fn empty_token_string_is_labelled() {
        let mut empty = token();
        empty.token.clear();
        let reply = Doc::new().paragraph(token_entry(&empty, now())).render(false);
        assert!(reply.body.starts_with("(empty token string)"));
    }

    #[test]
    fn entry_names_status_uses_and_expiry() {
        let mut used = token();
        used.valid = false;
        used.usage_limit = Some(1);
        used.times_used = 1;
        used.expires_at = Some(now());
        let reply = Doc::new().paragraph(token_entry(&used, now())).render(false);
        assert_eq!(
            reply.body,
            "`abc123def456` · `01M9193JHNC5JD0Y75TZ19448T` · expired · 1 / 1 uses · expired 2026-12-04 20:00 UTC"
        );
    }
}
