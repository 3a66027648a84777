//! OpenID discovery, used to find the token endpoint when only `mas_url` is configured.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::protocol::{AuthScheme, HttpRequest, HttpResponse, Method};

/// The discovery request for the MAS public base URL `mas_url` (no trailing slash).
pub fn discovery_request(mas_url: &str, timeout_ms: u64) -> HttpRequest {
    let mut headers = BTreeMap::new();
    headers.insert("accept".to_owned(), "application/json".to_owned());
    HttpRequest {
        method: Method::Get,
        url: format!("{mas_url}/.well-known/openid-configuration"),
        auth: AuthScheme::None,
        timeout_ms,
        headers,
        body: None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("MAS's OpenID discovery document was not found or has no token endpoint (HTTP {status}). Check `mas_url`, or set `token_url` explicitly.")]
    Unusable { status: u16 },
    #[error("MAS's OpenID discovery document names a token endpoint that is not an http(s) URL. Set `token_url` explicitly.")]
    BadEndpoint,
    #[error("MAS's OpenID discovery document names a token endpoint on another scheme, host or port than `mas_url`, so the bot will not send its credentials there. Check `mas_url`, or set `token_url` explicitly if that endpoint is right.")]
    OtherOrigin,
}

#[derive(Deserialize)]
struct Document {
    token_endpoint: String,
}

/// Returns the lower-cased scheme and authority of an http(s) URL without user info.
fn origin(url: &str) -> Option<(String, String)> {
    let uri = url.parse::<http::Uri>().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?.as_str();
    if !matches!(scheme.as_str(), "http" | "https") || authority.contains('@') {
        return None;
    }
    Some((scheme, authority.to_ascii_lowercase()))
}

/// Reads `token_endpoint` from a discovery response for `mas_url`. The
/// bot sends its client secret to that endpoint, so it must have the same
/// scheme, host and port as `mas_url`. A discovery document changed on the
/// way must not be able to send the secret elsewhere or over plain http.
pub fn read_token_endpoint(response: &HttpResponse, mas_url: &str) -> Result<String, DiscoveryError> {
    let unusable = DiscoveryError::Unusable { status: response.status };
    if response.status != 200 {
        return Err(unusable);
    }
    let document: Document = serde_json::from_str(&response.body).map_err(|_| unusable)?;

    let endpoint = document.token_endpoint;
    let Some(endpoint_origin) = origin(&endpoint) else {
        return Err(DiscoveryError::BadEndpoint);
    };
    if origin(mas_url) != Some(endpoint_origin) || endpoint.contains('#') {
        return Err(DiscoveryError::OtherOrigin);
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse { status, body: body.to_owned(), ..HttpResponse::default() }
    }

    #[test]
    fn request_has_no_auth() {
        let request = discovery_request("https://mas.example.org", 1000);
        assert_eq!(request.url, "https://mas.example.org/.well-known/openid-configuration");
        assert_eq!(request.auth, AuthScheme::None);
    }

    #[test]
    fn token_endpoint_is_read() {
        let body = r#"{"issuer":"https://mas.example.org/","token_endpoint":"https://mas.example.org/oauth2/token"}"#;
        assert_eq!(
            read_token_endpoint(&response(200, body), "https://mas.example.org"),
            Ok("https://mas.example.org/oauth2/token".to_owned())
        );
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(read_token_endpoint(&response(404, "<html>"), "https://mas.example.org").is_err());
        assert!(read_token_endpoint(&response(200, r#"{"issuer":"x"}"#), "https://mas.example.org").is_err());
        assert_eq!(
            read_token_endpoint(&response(200, r#"{"token_endpoint":"javascript:alert(1)"}"#), "https://mas.example.org"),
            Err(DiscoveryError::BadEndpoint)
        );
    }

    #[test]
    fn token_endpoint_on_another_origin_is_refused() {
        for endpoint in [
            "https://evil.example/oauth2/token",
            "http://mas.example.org/oauth2/token",
            "https://mas.example.org:8443/oauth2/token",
            "https://mas.example.org@evil.example/t",
            "https://user:pw@mas.example.org/oauth2/token",
        ] {
            let body = format!(r#"{{"token_endpoint":"{endpoint}"}}"#);
            assert!(read_token_endpoint(&response(200, &body), "https://mas.example.org").is_err(), "{endpoint}");
        }
        let upper = r#"{"token_endpoint":"https://MAS.example.org/oauth2/token"}"#;
        assert!(read_token_endpoint(&response(200, upper), "https://mas.example.org").is_ok());
    }
}
