//! The OAuth2 token endpoint: client credentials grant for an admin access token.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::mas::error;
use crate::protocol::{AuthScheme, HttpRequest, HttpResponse, Method};

/// Builds the token request. Client authentication is HTTP Basic, which the
/// host adds, so the body carries no credentials.
pub fn token_request(token_url: &str, scope: &str, timeout_ms: u64) -> HttpRequest {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("scope", scope)
        .finish();

    let mut headers = BTreeMap::new();
    headers.insert("accept".to_owned(), "application/json".to_owned());
    headers.insert(
        "content-type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    );

    HttpRequest {
        method: Method::Post,
        url: token_url.to_owned(),
        auth: AuthScheme::Client,
        timeout_ms,
        headers,
        body: Some(body),
    }
}

/// The reason no access token was issued. Each message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("MAS rejected the bot's client credentials (invalid_client). Check `client_id` and `client_secret` in the plugin config, and that MAS's config lists this client under `clients` with `client_auth_method: client_secret_basic` (then run `mas-cli config sync`).")]
    InvalidClient,

    #[error("MAS refused the scope `{scope}` (invalid_scope). Add the bot's `client_id` to `policy.data.admin_clients` in MAS's config and restart MAS, or check `token_scope` (normally `urn:mas:admin`).")]
    InvalidScope { scope: String },

    #[error("MAS's token endpoint rejected the request ({error}). Check `token_url` and `token_scope` in the plugin config.")]
    Rejected { error: String },

    #[error("MAS's token endpoint was not found (HTTP 404). Check `token_url` in the plugin config; it normally ends in /oauth2/token.")]
    NotFound,

    #[error("MAS error: the token endpoint answered HTTP {status}.")]
    Status { status: u16 },

    #[error("MAS error: the token endpoint's response has no access token.")]
    NoAccessToken,
}

impl TokenError {
    /// Returns the `status` checks this error decides: whether the endpoint
    /// responded as a token endpoint, whether the credentials were accepted,
    /// and whether the scope was granted (`None`: not reached).
    pub fn checks(&self) -> (bool, Option<bool>, Option<bool>) {
        match self {
            TokenError::InvalidClient => (true, Some(false), None),
            TokenError::InvalidScope { .. } => (true, Some(true), Some(false)),
            TokenError::Rejected { .. } => (true, None, None),
            TokenError::NotFound | TokenError::Status { .. } | TokenError::NoAccessToken => (false, None, None),
        }
    }
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
}

#[derive(Deserialize)]
struct Granted {
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Reads the token endpoint's response. On success returns `expires_in` in
/// seconds, if MAS sent it.
pub fn read_token_response(response: &HttpResponse, scope: &str) -> Result<Option<u64>, TokenError> {
    if response.status == 200 {
        if !response.access_token_stored {
            return Err(TokenError::NoAccessToken);
        }
        let granted: Option<Granted> = serde_json::from_str(&response.body).ok();
        return Ok(granted.and_then(|granted| granted.expires_in));
    }

    let oauth_error = serde_json::from_str::<OAuthError>(&response.body)
        .ok()
        .map(|body| body.error);
    match (response.status, oauth_error.as_deref()) {
        (_, Some("invalid_client")) => Err(TokenError::InvalidClient),
        (_, Some("invalid_scope")) => Err(TokenError::InvalidScope {
            scope: scope.to_owned(),
        }),
        (400..=499, Some(other)) => Err(TokenError::Rejected {
            error: other.to_owned(),
        }),
        (404, None) => Err(TokenError::NotFound),
        (status, _) => Err(TokenError::Status { status }),
    }
}

/// Describes a failed token response for the log, quoting only its OAuth2
/// error code. The body may contain an access token that the host did not
/// take out, because the host only does so for a 200 with a well-formed body.
pub fn describe_failure(response: &HttpResponse) -> String {
    let detail = match serde_json::from_str::<OAuthError>(&response.body) {
        Ok(oauth) => format!("OAuth2 error {:?}", oauth.error),
        Err(_) if error::is_html(response) => "an HTML page".to_owned(),
        Err(_) => format!("a body of {} bytes that is not an OAuth2 error", response.body.len()),
    };
    format!("token endpoint answered HTTP {} with {detail}", response.status)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            content_type: Some("application/json".to_owned()),
            body: body.to_owned(),
            ..HttpResponse::default()
        }
    }

    #[test]
    fn request_is_a_form_with_the_scope() {
        let request = token_request("https://mas.example.org/oauth2/token", "urn:mas:admin", 10_000);
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.auth, AuthScheme::Client);
        assert_eq!(
            request.body.as_deref(),
            Some("grant_type=client_credentials&scope=urn%3Amas%3Aadmin")
        );
    }

    #[test]
    fn success_returns_the_lifetime() {
        let mut granted = response(200, r#"{"token_type":"Bearer","expires_in":300,"scope":"urn:mas:admin"}"#);
        granted.access_token_stored = true;
        assert_eq!(read_token_response(&granted, "urn:mas:admin"), Ok(Some(300)));
    }

    #[test]
    fn success_without_access_token_is_an_error() {
        let granted = response(200, r#"{"token_type":"Bearer","expires_in":300}"#);
        assert_eq!(read_token_response(&granted, "s"), Err(TokenError::NoAccessToken));
    }

    #[test]
    fn oauth_errors_map_to_fixes() {
        let invalid_client = response(401, r#"{"error":"invalid_client","error_description":"Client authentication failed."}"#);
        assert_eq!(read_token_response(&invalid_client, "s"), Err(TokenError::InvalidClient));

        let invalid_scope = response(403, r#"{"error":"invalid_scope","error_description":"scope 'urn:mas:admin' not allowed"}"#);
        let error = read_token_response(&invalid_scope, "urn:mas:admin").expect_err("refused");
        assert!(error.to_string().contains("admin_clients"));

        let unsupported = response(400, r#"{"error":"unsupported_grant_type"}"#);
        assert_eq!(
            read_token_response(&unsupported, "s"),
            Err(TokenError::Rejected { error: "unsupported_grant_type".to_owned() })
        );
    }

    #[test]
    fn other_statuses_name_the_status() {
        let html = HttpResponse {
            status: 404,
            content_type: Some("text/html".to_owned()),
            body: "<html>".to_owned(),
            ..HttpResponse::default()
        };
        assert_eq!(read_token_response(&html, "s"), Err(TokenError::NotFound));
        assert_eq!(
            read_token_response(&response(502, "bad gateway"), "s"),
            Err(TokenError::Status { status: 502 })
        );
    }

    #[test]
    fn failure_description_never_quotes_the_body() {
        let leaky = response(201, r#"{"access_token":"mat_ISSUED_ACCESS_TOKEN_123","token_type":"Bearer"}"#);
        let description = describe_failure(&leaky);
        assert!(!description.contains("mat_ISSUED"), "{description}");
        assert!(description.contains("HTTP 201"));

        let oauth = response(401, r#"{"error":"invalid_client","error_description":"Client authentication failed."}"#);
        assert!(describe_failure(&oauth).contains("invalid_client"));
    }

    #[test]
    fn invalid_client_message_names_both_keys() {
        let message = TokenError::InvalidClient.to_string();
        assert!(message.contains("`client_id`"));
        assert!(message.contains("`client_secret`"));
    }
}
