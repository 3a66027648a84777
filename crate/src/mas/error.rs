//! MAS error bodies.
//!
//! Handler errors are JSON `{"errors":[{"title":...}, ...]}` where later
//! entries are the cause chain. Body-parsing errors are `text/plain`, and
//! unknown routes answer with an HTML page.

use serde::Deserialize;

use crate::protocol::HttpResponse;

#[derive(Deserialize)]
struct ErrorDocument {
    errors: Vec<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    title: String,
}

/// Longest excerpt of an unexpected body that goes into a log line.
const LOG_EXCERPT_CHARS: usize = 300;

/// The titles of a JSON error document, first (the main error) to last.
pub fn titles(body: &str) -> Option<Vec<String>> {
    let document: ErrorDocument = serde_json::from_str(body).ok()?;
    Some(document.errors.into_iter().map(|error| error.title).collect())
}

/// The main error title, if the body is a JSON error document with one.
pub fn first_title(body: &str) -> Option<String> {
    titles(body)?.into_iter().next()
}

pub fn is_json(response: &HttpResponse) -> bool {
    response
        .content_type
        .as_deref()
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

pub fn is_html(response: &HttpResponse) -> bool {
    response
        .content_type
        .as_deref()
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

/// A short, single-line description of a response body for the log: the
/// joined error titles, or the start of the text.
pub fn describe_body(response: &HttpResponse) -> String {
    if let Some(titles) = titles(&response.body) {
        return titles.join(": ");
    }
    if is_html(response) {
        return "an HTML page".to_owned();
    }
    let excerpt: String = response
        .body
        .chars()
        .take(LOG_EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if excerpt.trim().is_empty() {
        "an empty body".to_owned()
    } else {
        format!("{:?}", excerpt.trim())
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn titles_follow_the_cause_chain() {
        let body = r#"{"errors":[{"title":"Invalid ULID in path"},{"title":"invalid length"}]}"#;
        assert_eq!(
            titles(body),
            Some(vec!["Invalid ULID in path".to_owned(), "invalid length".to_owned()])
        );
        assert_eq!(first_title(body).as_deref(), Some("Invalid ULID in path"));
    }

    #[test]
    fn non_json_bodies_have_no_titles() {
        assert_eq!(titles("Failed to parse the request body as JSON"), None);
        assert_eq!(titles("<html></html>"), None);
        assert_eq!(titles(r#"{"error":"invalid_client"}"#), None);
    }

    #[test]
    fn content_types_are_recognised() {
        let mut response = HttpResponse {
            content_type: Some("application/json; charset=utf-8".to_owned()),
            ..HttpResponse::default()
        };
        assert!(is_json(&response));
        response.content_type = Some("text/html; charset=utf-8".to_owned());
        assert!(is_html(&response));
        assert_eq!(describe_body(&response), "an HTML page");
    }

    #[test]
    fn description_is_one_bounded_line() {
        let response = HttpResponse {
            content_type: Some("text/plain".to_owned()),
            body: format!("line one\nline two {}", "x".repeat(1000)),
            ..HttpResponse::default()
        };
        let description = describe_body(&response);
        assert!(!description.contains('\n'));
        assert!(description.len() < 400);
    }
}
