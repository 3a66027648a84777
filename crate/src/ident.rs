//! How a user names a token: by its ULID or by its token string.

use ulid::Ulid;

/// A token named in a command. `text` is what the user typed; `ulid` is set
/// when that text is also a valid ULID (26 Crockford base32 characters, any
/// case), in which case the core tries it as an ID before searching strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRef {
    pub text: String,
    pub ulid: Option<Ulid>,
}

impl TokenRef {
    pub fn parse(text: &str) -> TokenRef {
        // The round-trip check rejects values over 128 bits, which the ulid
        // crate would otherwise truncate into a different, valid ID.
        let ulid = if text.len() == ulid::ULID_LEN {
            Ulid::from_string(text)
                .ok()
                .filter(|id| id.to_string().eq_ignore_ascii_case(text))
        } else {
            None
        };
        TokenRef {
            text: text.to_owned(),
            ulid,
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn ulid_in_any_case_is_an_id() {
        let upper = TokenRef::parse("01M9193JHNC5JD0Y75TZ19448T");
        let lower = TokenRef::parse("01m9193jhnc5jd0y75tz19448t");
        assert!(upper.ulid.is_some());
        assert_eq!(upper.ulid, lower.ulid);
        assert_eq!(lower.text, "01m9193jhnc5jd0y75tz19448t");
    }

    #[test]
    fn other_strings_are_not_ids() {
        for text in [
            "abc123def456",
            "01M9193JHNC5JD0Y75TZ19448",   // 25 characters
            "01M9193JHNC5JD0Y75TZ19448TX", // 27 characters
            "01M9193JHNC5JD0Y75TZ1944UT",  // U is not Crockford base32
            "81M9193JHNC5JD0Y75TZ19448T",  // larger than 128 bits
            "../../../../../../../../ab",
        ] {
            assert_eq!(TokenRef::parse(text).ulid, None, "{text}");
        }
    }
}
