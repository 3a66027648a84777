//! Requests to MAS's admin API for user registration tokens.
//!
//! Paths are built only from fixed segments and parsed [`Ulid`]s, so nothing
//! a user types ever reaches a URL path. Query values go through
//! `form_urlencoded`, which percent-encodes every reserved character.

use std::collections::BTreeMap;

use serde::Serialize;
use ulid::Ulid;

use crate::protocol::{AuthScheme, HttpRequest, Method};

const COLLECTION: &str = "/v1/user-registration-tokens";

/// A filter of `listUserRegistrationTokens`, sent as `filter[<name>]=true|false`.
/// Several filters combine with AND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Valid(bool),
    Revoked(bool),
    Expired(bool),
    /// Whether the token was used at least once.
    Used(bool),
}

impl Filter {
    fn pair(self) -> (&'static str, bool) {
        match self {
            Filter::Valid(value) => ("filter[valid]", value),
            Filter::Revoked(value) => ("filter[revoked]", value),
            Filter::Expired(value) => ("filter[expired]", value),
            Filter::Used(value) => ("filter[used]", value),
        }
    }
}

/// Whether MAS counts the matches (`meta.count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// The default: a page and the count.
    Include,
    /// `count=false`: a page without counting, which is cheaper for MAS.
    Skip,
    /// `count=only`: the count without a page.
    Only,
}

/// The end of the list a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSpec {
    /// `page[first]=size`, after the cursor when one is given.
    First { size: u32, after: Option<Ulid> },
    /// `page[last]=size`: the newest tokens.
    Last { size: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub filters: Vec<Filter>,
    pub count: Count,
    /// Ignored with [`Count::Only`].
    pub page: PageSpec,
}

impl ListQuery {
    /// Returns a query for the number of tokens that match `filters`.
    pub fn count_only(filters: Vec<Filter>) -> ListQuery {
        ListQuery {
            filters,
            count: Count::Only,
            page: PageSpec::First { size: 1, after: None },
        }
    }
}

/// Fields of `addUserRegistrationToken`; `None` fields are left out, which
/// MAS reads as unlimited uses, no expiry and a generated token string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NewToken {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<u32>,
    /// RFC 3339 in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Fields of `updateUserRegistrationToken`. An outer `None` leaves the field
/// unchanged; `Some(None)` sends null, which clears it (unlimited uses, no expiry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TokenUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<Option<u32>>,
    /// RFC 3339 in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<String>>,
}

/// One admin API operation on registration tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCall {
    /// `GET /v1/user-registration-tokens` (listUserRegistrationTokens).
    List(ListQuery),
    /// `GET /v1/user-registration-tokens/{id}` (getUserRegistrationToken).
    Get(Ulid),
    /// `POST /v1/user-registration-tokens` (addUserRegistrationToken).
    Add(NewToken),
    /// `PUT /v1/user-registration-tokens/{id}` (updateUserRegistrationToken).
    Update(Ulid, TokenUpdate),
    /// `POST /v1/user-registration-tokens/{id}/revoke` (revokeUserRegistrationToken).
    Revoke(Ulid),
    /// `POST /v1/user-registration-tokens/{id}/unrevoke` (unrevokeUserRegistrationToken).
    Unrevoke(Ulid),
}

impl AdminCall {
    pub fn method(&self) -> Method {
        match self {
            AdminCall::List(_) | AdminCall::Get(_) => Method::Get,
            AdminCall::Add(_) | AdminCall::Revoke(_) | AdminCall::Unrevoke(_) => Method::Post,
            AdminCall::Update(..) => Method::Put,
        }
    }

    /// Returns the path and query after the configured `admin_api` base URL.
    pub fn path_and_query(&self) -> String {
        match self {
            AdminCall::List(query) => format!("{COLLECTION}?{}", encode_query(query)),
            AdminCall::Get(id) | AdminCall::Update(id, _) => format!("{COLLECTION}/{id}"),
            AdminCall::Add(_) => COLLECTION.to_owned(),
            AdminCall::Revoke(id) => format!("{COLLECTION}/{id}/revoke"),
            AdminCall::Unrevoke(id) => format!("{COLLECTION}/{id}/unrevoke"),
        }
    }

    /// A short description for log lines: method and path, never a body.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method().as_str(), self.path_and_query())
    }

    /// Builds the HTTP request against `admin_api` (no trailing slash).
    pub fn to_request(&self, admin_api: &str, timeout_ms: u64) -> HttpRequest {
        let mut headers = BTreeMap::new();
        headers.insert("accept".to_owned(), "application/json".to_owned());

        // Serializing structs of strings and integers cannot fail.
        let body = match self {
            AdminCall::Add(fields) => serde_json::to_string(fields).ok(),
            AdminCall::Update(_, fields) => serde_json::to_string(fields).ok(),
            _ => None,
        };
        if body.is_some() {
            headers.insert("content-type".to_owned(), "application/json".to_owned());
        }

        HttpRequest {
            method: self.method(),
            url: format!("{admin_api}{}", self.path_and_query()),
            auth: AuthScheme::Bearer,
            timeout_ms,
            headers,
            body,
        }
    }
}

fn encode_query(query: &ListQuery) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());

    for filter in &query.filters {
        let (name, value) = filter.pair();
        serializer.append_pair(name, if value { "true" } else { "false" });
    }
    match query.count {
        Count::Include => {}
        Count::Skip => {
            serializer.append_pair("count", "false");
        }
        Count::Only => {
            serializer.append_pair("count", "only");
            return serializer.finish();
        }
    }
    match query.page {
        PageSpec::First { size, after } => {
            if let Some(cursor) = after {
                serializer.append_pair("page[after]", &cursor.to_string());
            }
            serializer.append_pair("page[first]", &size.to_string());
        }
        PageSpec::Last { size } => {
            serializer.append_pair("page[last]", &size.to_string());
        }
    }

    serializer.finish()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const ID: &str = "01M9193JHNC5JD0Y75TZ19448T";

    fn id() -> Ulid {
        Ulid::from_string(ID).expect("valid ULID")
    }

    #[test]
    fn paths_use_canonical_ulids() {
        let lower = Ulid::from_string(&ID.to_lowercase()).expect("valid ULID");
        assert_eq!(
            AdminCall::Revoke(lower).path_and_query(),
            format!("/v1/user-registration-tokens/{ID}/revoke")
        );
        assert_eq!(
            AdminCall::Unrevoke(id()).path_and_query(),
            format!("/v1/user-registration-tokens/{ID}/unrevoke")
        );
        assert_eq!(AdminCall::Get(id()).method(), Method::Get);
    }

    #[test]
    fn list_query_is_percent_encoded() {
        let call = AdminCall::List(ListQuery {
            filters: vec![Filter::Valid(false)],
            count: Count::Skip,
            page: PageSpec::First { size: 100, after: Some(id()) },
        });
        assert_eq!(
            call.path_and_query(),
            format!("/v1/user-registration-tokens?filter%5Bvalid%5D=false&count=false&page%5Bafter%5D={ID}&page%5Bfirst%5D=100")
        );
    }

    #[test]
    fn count_only_has_no_page() {
        let call = AdminCall::List(ListQuery::count_only(vec![Filter::Revoked(true), Filter::Expired(false)]));
        assert_eq!(
            call.path_and_query(),
            "/v1/user-registration-tokens?filter%5Brevoked%5D=true&filter%5Bexpired%5D=false&count=only"
        );
    }

    #[test]
    fn update_sends_null_to_clear() {
        let update = TokenUpdate { usage_limit: Some(None), expires_at: Some(Some("2027-01-31T00:00:00Z".to_owned())) };
        let request = AdminCall::Update(id(), update).to_request("https://mas/api/admin", 1000);
        assert_eq!(request.method, Method::Put);
        assert_eq!(request.body.as_deref(), Some(r#"{"usage_limit":null,"expires_at":"2027-01-31T00:00:00Z"}"#));

        let unchanged = AdminCall::Update(id(), TokenUpdate { usage_limit: Some(Some(3)), expires_at: None });
        assert_eq!(unchanged.to_request("https://mas/api/admin", 1000).body.as_deref(), Some(r#"{"usage_limit":3}"#));
    }

    #[test]
    fn request_keeps_the_admin_api_prefix() {
        let request = AdminCall::Get(id()).to_request("https://example.org/prefix/mas/api/admin", 5000);
        assert_eq!(request.url, format!("https://example.org/prefix/mas/api/admin/v1/user-registration-tokens/{ID}"));
        assert_eq!(request.auth, AuthScheme::Bearer);
        assert_eq!(request.body, None);
        assert_eq!(request.timeout_ms, 5000);
    }

    #[test]
    fn add_body_leaves_out_unset_fields() {
        let call = AdminCall::Add(NewToken { usage_limit: Some(5), ..NewToken::default() });
        let request = call.to_request("https://mas/api/admin", 1000);
        assert_eq!(request.body.as_deref(), Some(r#"{"usage_limit":5}"#));
        assert_eq!(request.headers.get("content-type").map(String::as_str), Some("application/json"));
        assert_eq!(request.method, Method::Post);
    }
}
