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
}

#[derive(Deserialize)]
struct Document {
    token_endpoint: String,
}

/// Reads `token_endpoint` from a discovery response.
pub fn read_token_endpoint(response: &HttpResponse) -> Result<String, DiscoveryError> {
    let unusable = DiscoveryError::Unusable { status: response.status };
    if response.status != 200 {
        return Err(unusable);
    }
    let document: Document = serde_json::from_str(&response.body).map_err(|_| unusable)?;

    let endpoint = document.token_endpoint;
    let is_http = endpoint
        .parse::<http::Uri>()
        .is_ok_and(|uri| matches!(uri.scheme_str(), Some("http") | Some("https")) && uri.authority().is_some());
    if !is_http {
        return Err(DiscoveryError::BadEndpoint);
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
        assert_eq!(read_token_endpoint(&response(200, body)), Ok("https://mas.example.org/oauth2/token".to_owned()));
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(read_token_endpoint(&response(404, "<html>")).is_err());
        assert!(read_token_endpoint(&response(200, r#"{"issuer":"x"}"#)).is_err());
        assert_eq!(
            read_token_endpoint(&response(200, r#"{"token_endpoint":"javascript:alert(1)"}"#)),
            Err(DiscoveryError::BadEndpoint)
        );
    }
}
