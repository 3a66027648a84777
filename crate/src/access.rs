//! When the cached MAS access token may be used.
//!
//! The host holds the token itself; the core only tracks until when it is
//! good, so that it can ask for a new one shortly before MAS expires it.

use crate::protocol::UnixMillis;

/// Lifetime assumed when MAS's token response has no `expires_in`, in seconds.
const ASSUMED_LIFETIME_SECONDS: u64 = 60;

/// Renewal happens this long before the token expires, or at a tenth of its
/// lifetime for short-lived tokens, whichever is less.
const RENEW_MARGIN_MS: i64 = 30_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessToken {
    usable_until: Option<UnixMillis>,
}

impl AccessToken {
    pub fn is_usable(&self, now: UnixMillis) -> bool {
        self.usable_until.is_some_and(|until| now < until)
    }

    /// Records a token that MAS issued at `now` and that lives `expires_in` seconds.
    pub fn store(&mut self, now: UnixMillis, expires_in: Option<u64>) {
        let seconds = expires_in.unwrap_or(ASSUMED_LIFETIME_SECONDS);
        let lifetime_ms = i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        let margin = RENEW_MARGIN_MS.min(lifetime_ms / 10);
        self.usable_until = Some(now.saturating_add(lifetime_ms - margin));
    }

    pub fn forget(&mut self) {
        self.usable_until = None;
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn token_is_renewed_shortly_before_expiry() {
        let mut token = AccessToken::default();
        assert!(!token.is_usable(0));

        token.store(1_000_000, Some(300));
        assert!(token.is_usable(1_000_000));
        assert!(token.is_usable(1_000_000 + 269_999));
        assert!(!token.is_usable(1_000_000 + 270_000));
    }

    #[test]
    fn short_lifetimes_keep_most_of_their_time() {
        let mut token = AccessToken::default();
        token.store(0, Some(10));
        assert!(token.is_usable(8_999));
        assert!(!token.is_usable(9_000));
    }

    #[test]
    fn forget_drops_the_token() {
        let mut token = AccessToken::default();
        token.store(0, Some(300));
        token.forget();
        assert!(!token.is_usable(1));
    }

    #[test]
    fn zero_lifetime_is_never_usable() {
        let mut token = AccessToken::default();
        token.store(0, Some(0));
        assert!(!token.is_usable(0));
    }
}
