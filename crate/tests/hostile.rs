//! Hostile input: random identifiers, command lines and MAS responses.
//! The core must never panic, and every request it plans must stay inside
//! the registration-token API with a percent-encoded query.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::*;
use mas_token_core::protocol::{HttpRequest, HttpResponse, Step};
use proptest::prelude::*;

/// Number of cases per property: `HOSTILE_CASES` when set (`./worker fuzz`
/// runs long), otherwise `default`, which keeps CI short.
fn cases(default: u32) -> u32 {
    std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Pieces that break naive URL building, joined at random into identifiers.
const NASTY: &[&str] = &[
    "/", "..", "../", "%2f", "%2F", "%2e%2e", "?", "#", "&", "=", "+", " ", "\t", "\\", "\"", "'", "<", ">",
    "`", "*", "**", "@room", "é", "ß", "漢字", "🙂", "\u{202e}", "\u{0}", "\u{200b}", "page[after]=", "filter[valid]",
    "01M9193JHNC5JD0Y75TZ19448T", "abc", "ABC", "0", "-", "_", "~", "%", "%%", "\r\n",
];

fn identifier() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(prop::sample::select(NASTY), 1..12).prop_map(|parts| parts.concat()),
        1 => "\\PC{1,40}",
        1 => (1usize..4).prop_map(|kb| "x/".repeat(kb * 2560)),
    ]
}

/// Checks that a request goes to the token endpoint or to an allowed admin path.
fn assert_allowed(request: &HttpRequest) {
    if request.url == TOKEN_URL {
        return;
    }
    let rest = request
        .url
        .strip_prefix(ADMIN_API)
        .unwrap_or_else(|| panic!("request outside admin_api: {}", request.url));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));

    let collection = "/v1/user-registration-tokens";
    let tail = path
        .strip_prefix(collection)
        .unwrap_or_else(|| panic!("path outside the collection: {path}"));
    if !tail.is_empty() {
        let segment = tail.strip_prefix('/').unwrap_or_else(|| panic!("bad path: {path}"));
        let (id, action) = segment.split_once('/').unwrap_or((segment, ""));
        assert_eq!(id.len(), 26, "ID segment {id:?} in {path}");
        assert!(
            id.bytes().all(|byte| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&byte)),
            "ID segment {id:?} is not a canonical ULID"
        );
        assert!(matches!(action, "" | "revoke" | "unrevoke"), "action {action:?} in {path}");
    }

    assert!(
        query.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"%=&+-._*".contains(&byte)),
        "query not percent-encoded: {query}"
    );
}

fn assert_step_allowed(step: &Step) {
    if let Step::Http { request, .. } = step {
        assert_allowed(request);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(10_000)))]

    #[test]
    fn random_identifiers_stay_on_allowed_paths(name in identifier(), command in 0usize..5) {
        let body = match command {
            0 => format!("!token list {name}"),
            1 => format!("!token delete {name}"),
            2 => format!("!token unrevoke {name}"),
            3 => format!("!token show {name}"),
            _ => format!("!token edit {name} uses 3"),
        };
        let mut harness = Harness::new();
        let (id, step) = harness.send(&body);
        assert_step_allowed(&step);
        let Some(id) = id else { return Ok(()); };

        let step = harness.respond(id, token_granted());
        assert_step_allowed(&step);

        // MAS does not know the name as an ID: the search must stay in bounds too.
        let step = harness.respond(id, recorded("046-revoke-unknown-ulid-404"));
        assert_step_allowed(&step);
        if let Step::Http { .. } = step {
            let step = harness.respond(id, page(vec![resource(&ulid_for(1), &name)], true));
            assert_step_allowed(&step);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2_000)))]

    #[test]
    fn random_command_lines_never_panic(line in "\\PC{0,200}", prefix in prop::sample::select(vec!["!token ", "!token generate ", "!token edit x ", "!token list ", ""])) {
        let mut harness = Harness::new();
        let (_, step) = harness.send(&format!("{prefix}{line}"));
        assert_step_allowed(&step);
    }

    #[test]
    fn random_responses_never_panic(
        status in prop::sample::select(vec![200u16, 201, 204, 400, 401, 403, 404, 409, 415, 422, 429, 500, 502, 503]),
        body in prop_oneof![
            "\\PC{0,300}",
            Just("{\"data\":[{\"id\":\"01M9193JHNC5JD0Y75TZ19448T\"}],\"links\":{\"next\":\"x\"}}".to_owned()),
            Just("{\"data\":{\"id\":\"01M9193JHNC5JD0Y75TZ19448T\",\"attributes\":{\"token\":\"a\",\"valid\":true,\"usage_limit\":4294967296,\"times_used\":0,\"created_at\":\"x\"}}}".to_owned()),
            Just("{\"errors\":[]}".to_owned()),
            Just("{\"meta\":{\"count\":-1}}".to_owned()),
        ],
        content_type in prop::sample::select(vec!["application/json", "text/plain", "text/html", ""]),
        command in prop::sample::select(vec!["!token list", "!token list revoked", "!token delete abc", "!token generate", "!token status", "!token edit abc expires never", "!token unrevoke 01M9193JHNC5JD0Y75TZ19448T"]),
        token_step in any::<bool>(),
    ) {
        let mut harness = Harness::new();
        let (id, _) = harness.send(command);
        let id = id.expect("waits on a request");
        let response = HttpResponse {
            status,
            content_type: Some(content_type.to_owned()),
            body,
            ..HttpResponse::default()
        };

        let mut step = if token_step { harness.respond(id, response.clone()) } else { harness.respond(id, token_granted()) };
        // Feed the same response until the command ends; the core must end it.
        for _ in 0..20 {
            match step {
                Step::Http { .. } => step = harness.respond(id, response.clone()),
                _ => break,
            }
        }
        prop_assert!(!matches!(step, Step::Http { .. }), "command did not end");
        prop_assert_eq!(harness.core.in_flight(), 0);
    }
}

#[test]
fn markup_in_token_strings_is_shown_literally() {
    for name in ["<script>alert(1)</script>", "**bold**", "`tick`", "@room", "<a href=x>y</a>", "&amp;"] {
        let mut harness = Harness::new();
        let (id, step) = harness.send(&format!("!token show {name}"));
        let id = id.expect("waits");
        harness.grant_token(id, &step);
        let step = harness.respond(id, page(vec![resource(&ulid_for(1), name)], false));
        let reply = reply(&step);
        assert!(reply.body.contains(name), "{name} not literal in {}", reply.body);
        let escaped = html_escape::encode_text(name).to_string();
        assert!(reply.html.contains(&format!("<code>{escaped}</code>")), "{name}: {}", reply.html);
        assert!(!reply.html.contains("<script>") && !reply.html.contains("<a href"), "{}", reply.html);
    }
}
