//! Registration tokens as MAS's admin API returns them (JSON:API documents).

use serde::Deserialize;
use ulid::Ulid;

use crate::time::Timestamp;

/// A user registration token. Every `Option` is `None` where MAS sends null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationToken {
    pub id: Ulid,
    pub token: String,
    /// MAS's own verdict: not revoked, not expired and not used up.
    pub valid: bool,
    /// `None` means unlimited uses.
    pub usage_limit: Option<u32>,
    pub times_used: u64,
    pub created_at: Timestamp,
    /// `None` means never used.
    pub last_used_at: Option<Timestamp>,
    /// `None` means the token never expires.
    pub expires_at: Option<Timestamp>,
    /// `None` means the token is not revoked.
    pub revoked_at: Option<Timestamp>,
}

/// One page of `listUserRegistrationTokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub tokens: Vec<RegistrationToken>,
    /// `meta.count`: the number of tokens that match, when MAS sent it.
    pub count: Option<u64>,
    /// True when MAS sent `links.next`, meaning more tokens follow in a forward walk.
    pub has_next: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("MAS sent a registration-token document that does not parse: {0}")]
pub struct ModelError(#[from] serde_json::Error);

#[derive(Deserialize)]
struct SingleDocument {
    data: Resource,
}

#[derive(Deserialize)]
struct ListDocument {
    #[serde(default)]
    data: Vec<Resource>,
    #[serde(default)]
    meta: Option<ListMeta>,
    #[serde(default)]
    links: Option<ListLinks>,
}

#[derive(Deserialize)]
struct ListMeta {
    count: Option<u64>,
}

#[derive(Deserialize)]
struct ListLinks {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(deserialize_with = "deserialize_ulid")]
    id: Ulid,
    attributes: Attributes,
}

#[derive(Deserialize)]
struct Attributes {
    token: String,
    valid: bool,
    usage_limit: Option<u32>,
    times_used: u64,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

/// ulid's own serde support needs its `std` feature, which pulls in a random
/// number generator the core must not have, so IDs are parsed here.
fn deserialize_ulid<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Ulid, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    Ulid::from_string(&text).map_err(serde::de::Error::custom)
}

impl From<Resource> for RegistrationToken {
    fn from(resource: Resource) -> Self {
        let attributes = resource.attributes;
        RegistrationToken {
            id: resource.id,
            token: attributes.token,
            valid: attributes.valid,
            usage_limit: attributes.usage_limit,
            times_used: attributes.times_used,
            created_at: attributes.created_at,
            last_used_at: attributes.last_used_at,
            expires_at: attributes.expires_at,
            revoked_at: attributes.revoked_at,
        }
    }
}

/// The IDs and token strings of one list page, without the other fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageIds {
    pub entries: Vec<(Ulid, String)>,
    pub has_next: bool,
}

#[derive(Deserialize)]
struct IdsDocument {
    #[serde(default)]
    data: Vec<IdResource>,
    #[serde(default)]
    links: Option<ListLinks>,
}

#[derive(Deserialize)]
struct IdResource {
    #[serde(deserialize_with = "deserialize_ulid")]
    id: Ulid,
    attributes: TokenOnly,
}

#[derive(Deserialize)]
struct TokenOnly {
    token: String,
}

/// Parses only IDs and token strings of a list page. A string search reads
/// whole pages but needs little of them; skipping the timestamps makes
/// this about three times cheaper than [`parse_page`].
pub fn parse_page_ids(body: &str) -> Result<PageIds, ModelError> {
    let document: IdsDocument = serde_json::from_str(body)?;
    Ok(PageIds {
        entries: document
            .data
            .into_iter()
            .map(|resource| (resource.id, resource.attributes.token))
            .collect(),
        has_next: document.links.is_some_and(|links| links.next.is_some()),
    })
}

/// Parses a single-resource document (get, add, update, revoke, unrevoke).
pub fn parse_single(body: &str) -> Result<RegistrationToken, ModelError> {
    let document: SingleDocument = serde_json::from_str(body)?;
    Ok(document.data.into())
}

/// Parses a list page.
pub fn parse_page(body: &str) -> Result<Page, ModelError> {
    let document: ListDocument = serde_json::from_str(body)?;
    Ok(Page {
        tokens: document.data.into_iter().map(RegistrationToken::from).collect(),
        count: document.meta.and_then(|meta| meta.count),
        has_next: document.links.is_some_and(|links| links.next.is_some()),
    })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const REVOKED: &str = r#"{"data": {"type": "user-registration_token", "id": "01M9193JHNC5JD0Y75TZ19448T", "attributes": {"token": "custom-Token_1", "valid": false, "usage_limit": null, "times_used": 0, "created_at": "2026-12-04T19:39:40.469932Z", "last_used_at": null, "expires_at": null, "revoked_at": "2026-12-04T19:39:54.716095610Z"}, "links": {"self": "/api/admin/v1/user-registration-tokens/01M9193JHNC5JD0Y75TZ19448T"}}, "links": {"self": "/api/admin/v1/user-registration-tokens/01M9193JHNC5JD0Y75TZ19448T/revoke"}}"#;

    #[test]
    fn single_document_parses() {
        let token = parse_single(REVOKED).expect("valid document");
        assert_eq!(token.id.to_string(), "01M9193JHNC5JD0Y75TZ19448T");
        assert_eq!(token.token, "custom-Token_1");
        assert!(!token.valid);
        assert_eq!(token.usage_limit, None);
        assert!(token.revoked_at.is_some());
        assert_eq!(token.expires_at, None);
    }

    #[test]
    fn list_page_parses_count_and_next() {
        let body = r#"{"meta":{"count":33},"data":[],"links":{"self":"/x","next":"/x?page[after]=01M9193JHNC5JD0Y75TZ19448T&page[first]=10"}}"#;
        let page = parse_page(body).expect("valid page");
        assert_eq!(page.count, Some(33));
        assert!(page.has_next);

        let last = parse_page(r#"{"data":[],"links":{"self":"/x"}}"#).expect("valid page");
        assert_eq!(last.count, None);
        assert!(!last.has_next);
    }

    #[test]
    fn page_ids_parse_only_ids_and_strings() {
        let body = r#"{"data":[{"id":"01M9193JHNC5JD0Y75TZ19448T","attributes":{"token":"abc","valid":"ignored"}}],"links":{"next":"/x"}}"#;
        let ids = parse_page_ids(body).expect("valid page");
        assert_eq!(ids.entries.len(), 1);
        assert_eq!(ids.entries[0].1, "abc");
        assert!(ids.has_next);
        assert!(parse_page_ids(r#"{"data":[{"id":"nope","attributes":{"token":"a"}}]}"#).is_err());
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for body in ["", "<html>", "{}", r#"{"data":{"id":"nope","attributes":{}}}"#, "[1,2]"] {
            assert!(parse_single(body).is_err(), "{body}");
        }
        assert!(parse_page(r#"{"data":{"id":"x"}}"#).is_err());
    }
}
