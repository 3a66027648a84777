//! Commands beyond the four basic ones: filters, edit, custom tokens,
//! durations, status, help and discovery through `mas_url`.

mod common;

// Under wasm32 the tests run in Node through wasm-bindgen-test, whose
// attribute replaces the built-in #[test].
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use common::*;
use mas_token_core::protocol::{AuthScheme, HttpResponse, Method, Step};
use serde_json::{json, Value};

const RECORDED_ID: &str = "01M9193JHNC5JD0Y75TZ19448T";


fn count_only(count: u64) -> HttpResponse {
    json_response(200, json!({"meta": {"count": count}, "links": {"self": "/api/admin/v1/user-registration-tokens?count=only"}}))
}

fn counted_page(tokens: Vec<Value>, count: u64) -> HttpResponse {
    let mut response = page(tokens, false);
    let mut document: Value = serde_json::from_str(&response.body).expect("JSON");
    document["meta"] = json!({"count": count});
    response.body = document.to_string();
    response
}

fn body_json(step: &Step) -> Value {
    serde_json::from_str(http_request(step).body.as_deref().expect("body")).expect("JSON body")
}

#[test]
fn list_summary_counts_each_state() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, "!token list");
    let valid: Vec<Value> = (0..12).map(|index| resource(&ulid_for(index), &format!("v{index}"))).collect();
    let step = harness.respond(id, counted_page(valid, 12));

    let invalid: Vec<Value> = (20..30).map(|index| resource(&ulid_for(index), &format!("i{index}"))).collect();
    let step = {
        assert!(http_request(&step).url.contains("filter%5Bvalid%5D=false&page%5Blast%5D=300"));
        harness.respond(id, counted_page(invalid, 10))
    };
    assert_eq!(
        http_request(&step).url,
        format!("{ADMIN_API}/v1/user-registration-tokens?filter%5Brevoked%5D=true&count=only")
    );
    let step = harness.respond(id, count_only(3));
    assert_eq!(
        http_request(&step).url,
        format!("{ADMIN_API}/v1/user-registration-tokens?filter%5Bexpired%5D=true&filter%5Brevoked%5D=false&count=only")
    );
    let step = harness.respond(id, count_only(5));
    let reply = reply(&step);
    assert!(reply.body.starts_with("Registration tokens: 12 active, 3 revoked, 5 expired, 2 used up"), "{}", reply.body);
    // Invalid tokens come newest first.
    let newest = reply.body.find("i29").expect("i29 listed");
    let oldest = reply.body.find("i20").expect("i20 listed");
    assert!(newest < oldest);
}

#[test]
fn filtered_lists_use_mas_filters() {
    let cases = [
        ("revoked", "filter%5Brevoked%5D=true"),
        ("expired", "filter%5Bexpired%5D=true"),
        ("used", "filter%5Bused%5D=true"),
        ("unused", "filter%5Bused%5D=false"),
        ("valid", "filter%5Bvalid%5D=true"),
        ("invalid", "filter%5Bvalid%5D=false"),
    ];
    for (word, query) in cases {
        let mut harness = Harness::new();
        let (id, step) = start_with_token(&mut harness, &format!("!token list {word}"));
        assert_eq!(
            http_request(&step).url,
            format!("{ADMIN_API}/v1/user-registration-tokens?{query}&page%5Blast%5D=300"),
            "{word}"
        );
        let step = harness.respond(id, counted_page(vec![resource(&ulid_for(1), "match")], 1));
        let reply = reply(&step);
        assert!(reply.body.contains("match"), "{word}: {}", reply.body);
        assert!(reply.body.starts_with(&format!("Registration tokens: 1 {word}")), "{}", reply.body);
    }
}

#[test]
fn edit_reads_then_puts() {
    let mut harness = Harness::new();
    let (id, step) = start_with_token(&mut harness, &format!("!token edit {RECORDED_ID} uses 10 expires 2027-01-31"));
    assert_eq!(http_request(&step).method, Method::Get);
    assert!(http_request(&step).url.ends_with(&format!("/user-registration-tokens/{RECORDED_ID}")));

    let step = harness.respond(id, recorded("044-unrevoke"));
    let request = http_request(&step);
    assert_eq!(request.method, Method::Put);
    assert!(request.url.ends_with(&format!("/user-registration-tokens/{RECORDED_ID}")));
    assert_eq!(body_json(&step), json!({"usage_limit": 10, "expires_at": "2027-01-31T00:00:00Z"}));

    let mut updated: Value = serde_json::from_str(&recorded("044-unrevoke").body).expect("JSON");
    updated["data"]["attributes"]["usage_limit"] = json!(10);
    updated["data"]["attributes"]["expires_at"] = json!("2027-01-31T00:00:00Z");
    let step = harness.respond(id, json_response(200, updated));
    let reply = reply(&step);
    assert!(reply.body.contains("uses 0 / unlimited → 0 / 10"), "{}", reply.body);
    assert!(reply.body.contains("expires never → 2027-01-31 00:00 UTC"), "{}", reply.body);
    assert!(log_text(&step).contains(&format!("edited token {RECORDED_ID}")));
}

#[test]
fn edit_clears_with_null() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token edit {RECORDED_ID} uses unlimited expires never"));
    let mut limited: Value = serde_json::from_str(&recorded("044-unrevoke").body).expect("JSON");
    limited["data"]["attributes"]["usage_limit"] = json!(5);
    limited["data"]["attributes"]["expires_at"] = json!("2027-01-31T00:00:00Z");
    let step = harness.respond(id, json_response(200, limited));
    assert_eq!(body_json(&step), json!({"usage_limit": null, "expires_at": null}));
}

#[test]
fn edit_refuses_revoked_tokens() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token edit {RECORDED_ID} uses 3"));
    let step = harness.respond(id, recorded("041-revoke"));
    let reply = reply(&step);
    assert!(reply.error);
    assert!(reply.body.contains("is revoked, so it was not edited"), "{}", reply.body);
}

#[test]
fn edit_by_string_searches_first() {
    let mut harness = Harness::new();
    let (id, step) = start_with_token(&mut harness, "!token edit welcome expires 7d");
    assert!(http_request(&step).url.contains("count=false"));
    let target = ulid_for(4);
    let step = harness.respond(id, page(vec![resource(&target, "welcome")], false));
    assert_eq!(http_request(&step).method, Method::Put);
    assert_eq!(body_json(&step), json!({"expires_at": "2026-12-11T20:00:00Z"}));
}

#[test]
fn generate_custom_token_unlimited_never() {
    let mut harness = Harness::new();
    let (_, step) = start_with_token(&mut harness, "!token generate unlimited never --token welcome-2027");
    assert_eq!(body_json(&step), json!({"token": "welcome-2027"}));

    let (_, step) = harness.send("!token create 5 1d12h");
    assert_eq!(body_json(&step), json!({"usage_limit": 5, "expires_at": "2026-12-06T08:00:00Z"}));
}

#[test]
fn generate_rejects_past_dates() {
    let mut harness = Harness::new();
    let (id, step) = harness.send("!token generate 1 2020-01-01");
    assert_eq!(id, None);
    assert!(reply(&step).body.contains("is in the past"));
}

#[test]
fn duplicate_custom_token_says_it_exists() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, "!token generate --token taken");
    let step = harness.respond(id, recorded("017-create-custom-token-duplicate"));
    assert!(reply(&step).body.contains("that token string already exists"));
}

#[test]
fn status_reports_every_check() {
    let mut harness = Harness::new();
    let (id, step) = harness.send("!token status");
    let id = id.expect("waits");
    assert_eq!(http_request(&step).url, TOKEN_URL);
    let step = harness.respond(id, token_granted());
    assert_eq!(
        http_request(&step).url,
        format!("{ADMIN_API}/v1/user-registration-tokens?filter%5Bvalid%5D=true&count=only")
    );
    let step = harness.respond(id, count_only(12));
    let reply = reply(&step);
    assert!(!reply.error);
    assert!(reply.body.contains("everything works"));
    assert!(reply.body.contains("12 valid registration tokens"));
    assert_eq!(reply.body.matches('✅').count(), 4, "{}", reply.body);
}

#[test]
fn status_fetches_a_fresh_token_even_when_cached() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, "!token list revoked");
    harness.respond(id, counted_page(vec![], 0));
    let (_, step) = harness.send("!token status");
    assert_eq!(http_request(&step).url, TOKEN_URL);
}

#[test]
fn status_names_the_failing_step() {
    let cases = [
        ("002-token-client-credentials-wrong-secret", 1, "`client_secret`"),
        ("003-token-client-credentials-scope-not-allowed", 2, "admin_clients"),
    ];
    for (recording, passed, fix) in cases {
        let mut harness = Harness::new();
        let (id, _) = harness.send("!token status");
        let step = harness.respond(id.expect("waits"), recorded(recording));
        let reply = reply(&step);
        assert!(reply.error, "{recording}");
        assert_eq!(reply.body.matches('✅').count(), passed, "{recording}: {}", reply.body);
        assert_eq!(reply.body.matches('❌').count(), 1, "{recording}");
        assert!(reply.body.contains(fix), "{recording}: {}", reply.body);
    }

    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, "!token status");
    let step = harness.respond(id, recorded("038-get-path-encoded-dotdot"));
    let reply = reply(&step);
    assert_eq!(reply.body.matches('✅').count(), 3, "{}", reply.body);
    assert!(reply.body.contains("`admin_api`") || reply.body.contains("adminapi"));
}

#[test]
fn mas_url_discovers_the_token_endpoint() {
    let mut config = config();
    config["mas_url"] = json!("https://auth.example.org");
    if let Some(map) = config.as_object_mut() {
        map.remove("token_url");
        map.remove("admin_api");
    }
    let mut harness = Harness::with_config(config);

    let (id, step) = harness.send("!token list revoked");
    let id = id.expect("waits");
    let request = http_request(&step);
    assert_eq!(request.url, "https://auth.example.org/.well-known/openid-configuration");
    assert_eq!(request.auth, AuthScheme::None);

    let document = json!({"issuer": "https://auth.example.org/", "token_endpoint": "https://auth.example.org/oauth2/token"});
    let step = harness.respond(id, json_response(200, document));
    assert_eq!(http_request(&step).url, "https://auth.example.org/oauth2/token");
    let step = harness.respond(id, token_granted());
    assert!(http_request(&step).url.starts_with("https://auth.example.org/api/admin/v1/user-registration-tokens?"));
}

/// The README, whose command table must show the same examples as `help`.
const README: &str = include_str!("../../README.md");

#[test]
fn help_examples_appear_in_the_readme() {
    let mut harness = Harness::new();
    let (_, step) = harness.send("!token help");
    let reply = reply(&step);
    let examples: Vec<&str> = reply
        .body
        .split("Example: `")
        .skip(1)
        .filter_map(|rest| rest.split('`').next())
        .collect();
    assert!(examples.len() >= 6, "{}", reply.body);
    for example in examples {
        assert!(README.contains(&format!("`{example}`")), "README lacks the help example `{example}`");
    }
}

#[test]
fn help_lists_every_subcommand_with_an_example() {
    let mut config = config();
    config["base_command"] = json!("regtoken");
    let mut harness = Harness::with_config(config);
    let (_, step) = harness.send("!regtoken");
    let reply = reply(&step);
    for example in [
        "!regtoken list revoked",
        "!regtoken generate 5 7d --token welcome-2027",
        "!regtoken edit welcome-2027 uses 10 expires 2027-01-31",
        "!regtoken delete welcome-2027",
        "!regtoken unrevoke welcome-2027",
        "!regtoken status",
    ] {
        assert!(reply.body.contains(example), "{example} missing from {}", reply.body);
    }
}

#[test]
fn retry_after_date_is_not_repeated_as_seconds() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, "!token list revoked");
    let step = harness.respond(id, HttpResponse {
        status: 429,
        retry_after: Some("Wed, 21 Oct 2026 07:28:00 GMT".to_owned()),
        ..HttpResponse::default()
    });
    assert_eq!(reply(&step).body, "MAS is rate limiting the bot (HTTP 429). Try again.");

    let (id, _) = harness.send("!token list revoked");
    let step = harness.respond(id.expect("waits"), HttpResponse {
        status: 429,
        retry_after: Some("30".to_owned()),
        ..HttpResponse::default()
    });
    assert!(reply(&step).body.contains("Try again in 30 seconds"));
}

#[test]
fn details_show_relative_times() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token show {RECORDED_ID}"));
    let mut token: Value = serde_json::from_str(&recorded("044-unrevoke").body).expect("JSON");
    token["data"]["attributes"]["expires_at"] = json!("2026-12-10T20:00:00Z");
    let step = harness.respond(id, json_response(200, token));
    let reply = reply(&step);
    assert!(reply.body.contains("Expires: 2026-12-10 20:00 UTC (in 6 days)"), "{}", reply.body);
    assert!(reply.body.contains("minutes ago)"), "{}", reply.body);
}

#[test]
fn internal_status_skips_the_whitelist() {
    let mut harness = Harness::new();
    let message = mas_token_core::protocol::Message {
        sender: "@maubot-host:internal".to_owned(),
        room_id: String::new(),
        body: "!token status".to_owned(),
        internal: true,
    };
    let (id, step) = harness.core.start(NOW_MS, &message).expect("clock in range");
    assert!(id.is_some());
    assert_eq!(http_request(&step).url, TOKEN_URL);

    let (id, step) = harness.send_as("@maubot-host:internal", "", "!token status");
    assert_eq!(id, None);
    assert!(reply(&step).body.contains("not allowed"));
}

#[test]
fn host_limits_set_page_sizes() {
    let mut harness = Harness::new();
    harness.core.set_limits(mas_token_core::Limits { list_page_size: 30, search_page_size: 150 });
    let (id, step) = start_with_token(&mut harness, "!token list");
    assert!(http_request(&step).url.ends_with("page%5Bfirst%5D=30"), "{}", http_request(&step).url);
    harness.core.cancel(id);

    let (_, step) = harness.send("!token delete some-string");
    assert!(http_request(&step).url.ends_with("count=false&page%5Bfirst%5D=150"), "{}", http_request(&step).url);

    harness.core.set_limits(mas_token_core::Limits { list_page_size: 0, search_page_size: 1 });
    let (_, step) = harness.send("!token list revoked");
    assert!(http_request(&step).url.ends_with("page%5Blast%5D=10"), "clamped: {}", http_request(&step).url);
}

#[test]
fn edit_to_current_values_sends_no_put() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token edit {RECORDED_ID} uses unlimited expires never"));
    let step = harness.respond(id, recorded("044-unrevoke"));
    let reply = reply(&step);
    assert!(!reply.error);
    assert!(reply.body.contains("already has these settings"), "{}", reply.body);
    assert!(!log_text(&step).contains("audit:"));
    assert_eq!(harness.core.in_flight(), 0);
}
