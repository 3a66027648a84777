//! Commands driven through [`Core`] from chat message to reply, with the
//! exact requests checked at each step.

mod common;

// Under wasm32 the tests run in Node through wasm-bindgen-test, whose
// attribute replaces the built-in #[test].
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use common::*;
use mas_token_core::protocol::{AuthScheme, FailureKind, HttpResponse, Method, Step};
use serde_json::{json, Value};

const RECORDED_ID: &str = "01M9193JHNC5JD0Y75TZ19448T";


#[test]
fn token_request_uses_client_auth_and_scope() {
    let mut harness = Harness::new();
    let (_, step) = harness.send("!token list");
    let request = http_request(&step);
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, TOKEN_URL);
    assert_eq!(request.auth, AuthScheme::Client);
    assert_eq!(request.body.as_deref(), Some("grant_type=client_credentials&scope=urn%3Amas%3Aadmin"));
    assert_eq!(request.timeout_ms, 10_000);
    assert!(!serde_json::to_string(&step).expect("serializes").contains("not-a-real-secret"));
}

#[test]
fn revoke_by_ulid_sends_one_revoke() {
    let mut harness = Harness::new();
    let (id, step) = start_with_token(&mut harness, &format!("!token delete {RECORDED_ID}"));

    let request = http_request(&step);
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, format!("{ADMIN_API}/v1/user-registration-tokens/{RECORDED_ID}/revoke"));
    assert_eq!(request.auth, AuthScheme::Bearer);

    let step = harness.respond(id, recorded("041-revoke"));
    let reply = reply(&step);
    assert!(!reply.error);
    assert!(reply.body.contains("Revoked"), "{}", reply.body);
    assert!(reply.body.contains("custom-Token_1"));
    assert!(reply.body.contains("Status: revoked"));
    assert!(log_text(&step).contains(&format!("revoked token {RECORDED_ID}")));
    assert_eq!(harness.core.in_flight(), 0);
}

#[test]
fn lowercase_ulid_is_sent_canonical() {
    let mut harness = Harness::new();
    let (_, step) = start_with_token(&mut harness, &format!("!token unrevoke {}", RECORDED_ID.to_lowercase()));
    assert!(http_request(&step).url.ends_with(&format!("/{RECORDED_ID}/unrevoke")));
}

#[test]
fn revoke_by_string_pages_to_the_third_page() {
    let mut harness = Harness::new();
    let (id, mut step) = start_with_token(&mut harness, "!token delete abc123def456");

    let pages: Vec<Vec<Value>> = (0..3)
        .map(|page_index| {
            (0..1000)
                .map(|offset| {
                    let index = page_index * 1000 + offset;
                    let token = if index == 2500 { "abc123def456".to_owned() } else { format!("tok{index:09}") };
                    resource(&ulid_for(index), &token)
                })
                .collect()
        })
        .collect();

    let mut after: Option<String> = None;
    for (page_index, tokens) in pages.into_iter().enumerate() {
        let request = http_request(&step).clone();
        assert_eq!(request.method, Method::Get);
        let mut expected = format!("{ADMIN_API}/v1/user-registration-tokens?count=false");
        if let Some(cursor) = &after {
            expected.push_str(&format!("&page%5Bafter%5D={cursor}"));
        }
        expected.push_str("&page%5Bfirst%5D=1000");
        assert_eq!(request.url, expected, "page {page_index}");

        after = tokens.last().and_then(|token| token["id"].as_str()).map(str::to_owned);
        step = harness.respond(id, page(tokens, true));
    }

    let target = ulid_for(2500);
    let request = http_request(&step);
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, format!("{ADMIN_API}/v1/user-registration-tokens/{target}/revoke"));

    let mut revoked = resource(&target, "abc123def456");
    revoked["attributes"]["valid"] = json!(false);
    revoked["attributes"]["revoked_at"] = json!("2026-12-04T19:59:00Z");
    let step = harness.respond(id, single(revoked));
    assert!(reply(&step).body.contains("Revoked"));
}

#[test]
fn repeated_string_lookup_costs_one_request() {
    let mut harness = Harness::new();
    let (id, step) = start_with_token(&mut harness, "!token list welcome");
    assert!(http_request(&step).url.contains("page%5Bfirst%5D"));
    let target = ulid_for(7);
    let step = harness.respond(id, page(vec![resource(&ulid_for(6), "other"), resource(&target, "welcome")], false));
    assert!(reply(&step).body.contains("welcome"));

    let (id, step) = harness.send("!token delete welcome");
    let id = id.expect("waits on a request");
    assert_eq!(http_request(&step).url, format!("{ADMIN_API}/v1/user-registration-tokens/{target}/revoke"));

    // MAS no longer has the remembered ID: the cache entry is dropped and the search starts over.
    let step = harness.respond(id, recorded("046-revoke-unknown-ulid-404"));
    assert!(http_request(&step).url.contains("page%5Bfirst%5D"));
    let step = harness.respond(id, page(vec![], false));
    assert!(reply(&step).body.contains("not found"));
}

#[test]
fn unknown_string_replies_not_found() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, "!token delete nosuchtoken");
    let step = harness.respond(id, page(vec![resource(&ulid_for(1), "other")], false));
    let reply = reply(&step);
    assert!(reply.error);
    assert!(reply.body.contains("not found"), "{}", reply.body);
    assert!(reply.body.contains("nosuchtoken"));
}

#[test]
fn unknown_ulid_falls_back_to_string_search() {
    let mut harness = Harness::new();
    let name = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let (id, step) = start_with_token(&mut harness, &format!("!token delete {name}"));
    assert!(http_request(&step).url.ends_with(&format!("/{name}/revoke")));

    let step = harness.respond(id, recorded("046-revoke-unknown-ulid-404"));
    assert!(http_request(&step).url.contains("page%5Bfirst%5D=1000"));

    let target = ulid_for(3);
    let step = harness.respond(id, page(vec![resource(&target, name)], false));
    assert!(http_request(&step).url.ends_with(&format!("/{target}/revoke")));
}

#[test]
fn revoking_twice_says_already_revoked() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token delete {RECORDED_ID}"));
    let step = harness.respond(id, recorded("042-revoke-again-already-revoked"));
    let reply = reply(&step);
    assert!(reply.error);
    assert!(reply.body.contains("already revoked"), "{}", reply.body);
}

#[test]
fn unrevoking_an_active_token_says_not_revoked() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token unrevoke {RECORDED_ID}"));
    let step = harness.respond(id, recorded("045-unrevoke-again-not-revoked"));
    assert!(reply(&step).body.contains("is not revoked"), "{}", reply(&step).body);
}

#[test]
fn unrevoke_shows_the_restored_token() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token restore {RECORDED_ID}"));
    let step = harness.respond(id, recorded("044-unrevoke"));
    let reply = reply(&step);
    assert!(!reply.error);
    assert!(reply.body.contains("Unrevoked"));
    assert!(reply.body.contains("Status: active"));
}

#[test]
fn generate_rejects_bad_uses_without_a_request() {
    let mut harness = Harness::new();
    for uses in ["0", "-3", "two", "1.5", "99999999999"] {
        let (id, step) = harness.send(&format!("!token generate {uses}"));
        assert_eq!(id, None, "{uses}");
        let reply = reply(&step);
        assert!(reply.error, "{uses}");
        assert!(reply.body.contains("Usage"), "{uses}: {}", reply.body);
    }
}

#[test]
fn generate_rejects_bad_expiry_without_a_request() {
    let mut harness = Harness::new();
    for expiry in ["0", "-60"] {
        let (id, step) = harness.send(&format!("!token generate 1 {expiry}"));
        assert_eq!(id, None);
        assert!(reply(&step).body.contains("Usage"));
    }
}

#[test]
fn generate_sends_expiry_one_day_later() {
    let mut harness = Harness::new();
    let (id, step) = start_with_token(&mut harness, "!token generate 1 86400");
    let request = http_request(&step);
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, format!("{ADMIN_API}/v1/user-registration-tokens"));
    let body: Value = serde_json::from_str(request.body.as_deref().expect("body")).expect("JSON");
    assert_eq!(body, json!({"usage_limit": 1, "expires_at": "2026-12-05T20:00:00Z"}));

    let step = harness.respond(id, recorded("015-create-usage-limit-and-expiry"));
    let reply = reply(&step);
    assert!(reply.body.contains("Created"));
    assert!(reply.body.contains("yhzG6VcOU7dA"));
    assert!(log_text(&step).contains("created token 01M9193JHG3DPSHHR54TE2ZMA4"));
}

#[test]
fn generate_uses_config_defaults() {
    let mut harness = Harness::new();
    let (_, step) = start_with_token(&mut harness, "!token generate");
    let body: Value = serde_json::from_str(http_request(&step).body.as_deref().expect("body")).expect("JSON");
    assert_eq!(body, json!({"usage_limit": 1, "expires_at": "2026-12-11T20:00:00Z"}));

    let mut config = config();
    config["default_uses_allowed"] = Value::Null;
    config["default_expiry_time"] = json!(0);
    let mut harness = Harness::with_config(config);
    let (_, step) = start_with_token(&mut harness, "!token generate");
    assert_eq!(http_request(&step).body.as_deref(), Some("{}"));
}

#[test]
fn generate_duplicate_string_is_a_plain_reply() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, "!token generate");
    let step = harness.respond(id, recorded("017-create-custom-token-duplicate"));
    assert!(reply(&step).body.contains("already exists"));
}

#[test]
fn null_fields_render_as_words() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token list {RECORDED_ID}"));
    let step = harness.respond(id, recorded("044-unrevoke"));
    let reply = reply(&step);
    for expected in ["0 / unlimited", "Expires: never", "Last used: never"] {
        assert!(reply.body.contains(expected), "{expected}: {}", reply.body);
    }
    for text in [&reply.body, &reply.html] {
        assert!(!text.contains("None"), "{text}");
        assert!(!text.contains("null"), "{text}");
    }
}

#[test]
fn list_without_invalid_tokens_makes_two_requests() {
    let mut harness = Harness::new();
    let (id, step) = start_with_token(&mut harness, "!token list");
    assert_eq!(
        http_request(&step).url,
        format!("{ADMIN_API}/v1/user-registration-tokens?filter%5Bvalid%5D=true&page%5Bfirst%5D=300")
    );
    let valid: Vec<Value> = (0..25).map(|index| resource(&ulid_for(index), &format!("valid{index:03}"))).collect();
    let mut body = page(valid, false);
    let mut document: Value = serde_json::from_str(&body.body).expect("JSON");
    document["meta"] = json!({"count": 25});
    body.body = document.to_string();

    let step = harness.respond(id, body);
    assert_eq!(
        http_request(&step).url,
        format!("{ADMIN_API}/v1/user-registration-tokens?filter%5Bvalid%5D=false&page%5Blast%5D=300")
    );
    let step = harness.respond(id, recorded("009-list-empty"));
    let reply = reply(&step);
    assert!(reply.body.starts_with("Registration tokens: 25 active, 0 revoked, 0 expired, 0 used up"), "{}", reply.body);
    for index in 0..25 {
        assert!(reply.body.contains(&format!("valid{index:03}")));
    }
}

#[test]
fn ten_commands_make_one_token_request() {
    let mut harness = Harness::new();
    let mut token_requests = 0;
    for index in 0..10 {
        harness.now_ms = NOW_MS + index * 6_000;
        let (id, mut step) = harness.send(&format!("!token unrevoke {RECORDED_ID}"));
        let id = id.expect("waits on a request");
        if http_request(&step).url == TOKEN_URL {
            token_requests += 1;
            step = harness.respond(id, token_granted());
        }
        assert_eq!(http_request(&step).auth, AuthScheme::Bearer);
        harness.respond(id, recorded("044-unrevoke"));
    }
    assert_eq!(token_requests, 1);

    // Past the token's lifetime (300 s less the renewal margin) a new one is requested.
    harness.now_ms = NOW_MS + 280_000;
    let (_, step) = harness.send(&format!("!token unrevoke {RECORDED_ID}"));
    assert_eq!(http_request(&step).url, TOKEN_URL);
}

#[test]
fn expired_access_token_is_refreshed_once() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token unrevoke {RECORDED_ID}"));

    let step = harness.respond(id, recorded("104-list-expired-admin-token"));
    assert_eq!(http_request(&step).url, TOKEN_URL);
    assert!(log_text(&step).contains("Access token expired"));

    let step = harness.respond(id, token_granted());
    assert!(http_request(&step).url.ends_with("/unrevoke"));
    let step = harness.respond(id, recorded("044-unrevoke"));
    assert!(!reply(&step).error);
}

#[test]
fn second_401_stops_without_a_loop() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token unrevoke {RECORDED_ID}"));
    let step = harness.respond(id, recorded("013-list-valid-token-without-admin-scope"));
    assert_eq!(http_request(&step).url, TOKEN_URL);
    let step = harness.respond(id, token_granted());
    assert!(http_request(&step).url.ends_with("/unrevoke"));
    let step = harness.respond(id, recorded("013-list-valid-token-without-admin-scope"));
    let reply = reply(&step);
    assert!(reply.error);
    assert!(reply.body.contains("admin_clients"), "{}", reply.body);
    assert_eq!(harness.core.in_flight(), 0);
}

#[test]
fn invalid_client_names_the_credentials() {
    let mut harness = Harness::new();
    let (id, _) = harness.send("!token list");
    let step = harness.respond(id.expect("waits"), recorded("002-token-client-credentials-wrong-secret"));
    let reply = reply(&step);
    assert!(reply.error);
    assert!(reply.body.contains("`client_id`"), "{}", reply.body);
    assert!(reply.body.contains("`client_secret`"), "{}", reply.body);
    assert_eq!(harness.core.in_flight(), 0);
}

#[test]
fn invalid_scope_names_admin_clients() {
    let mut harness = Harness::new();
    let (id, _) = harness.send("!token list");
    let step = harness.respond(id.expect("waits"), recorded("003-token-client-credentials-scope-not-allowed"));
    assert!(reply(&step).body.contains("policy.data.admin_clients"));
}

#[test]
fn reads_are_retried_once_on_transient_errors() {
    let mut harness = Harness::new();
    let (id, first) = start_with_token(&mut harness, "!token list");
    let unavailable = HttpResponse { status: 503, body: "busy".to_owned(), ..HttpResponse::default() };

    let step = harness.respond(id, unavailable.clone());
    assert_eq!(http_request(&step).url, http_request(&first).url);
    assert!(log_text(&step).contains("retrying once"));

    let step = harness.respond(id, unavailable);
    assert!(reply(&step).body.contains("MAS error: HTTP 503"));
    assert!(log_text(&step).contains("HTTP 503"));
}

#[test]
fn reads_are_retried_once_after_connection_failures() {
    let mut harness = Harness::new();
    let (id, first) = start_with_token(&mut harness, "!token list revoked");
    let step = harness.fail(id, FailureKind::Connection);
    assert_eq!(http_request(&step).url, http_request(&first).url);
    let step = harness.fail(id, FailureKind::Connection);
    assert!(reply(&step).body.contains("could not connect"), "{}", reply(&step).body);
}

#[test]
fn writes_and_timeouts_are_not_retried() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, &format!("!token delete {RECORDED_ID}"));
    let step = harness.respond(id, HttpResponse { status: 502, ..HttpResponse::default() });
    assert!(reply(&step).body.contains("MAS error: HTTP 502"));

    let (id, _) = harness.send(&format!("!token delete {RECORDED_ID}"));
    let step = harness.fail(id.expect("waits"), FailureKind::Connection);
    assert!(reply(&step).body.contains("could not connect"));

    let (id, _) = harness.send("!token list");
    let step = harness.fail(id.expect("waits"), FailureKind::Timeout);
    assert!(reply(&step).body.contains("no answer within 10 seconds"), "{}", reply(&step).body);
}

#[test]
fn html_404_points_at_admin_api() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, "!token list");
    let step = harness.respond(id, recorded("038-get-path-encoded-dotdot"));
    assert!(reply(&step).body.contains("`admin_api`"));
}

#[test]
fn unparseable_success_is_a_mas_error() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, "!token list");
    let step = harness.respond(id, json_response(200, json!({"data": "nope"})));
    assert!(reply(&step).body.contains("MAS error"));
}

#[test]
fn senders_outside_both_whitelists_are_refused() {
    let mut harness = Harness::new();
    let cases = [
        ("@mallory:example.org", ROOM, false),
        ("@mallory:example.org", ADMIN_ROOM, true),
        ("@bob:example.org", "!elsewhere:example.org", false),
        (ALICE, "!elsewhere:example.org", true),
    ];
    for (sender, room, allowed) in cases {
        for body in ["!token list", "!token delete abc", "!token generate 0", "!token"] {
            let (id, step) = harness.send_as(sender, room, body);
            if allowed {
                assert!(!reply_is_refusal(&step), "{sender} in {room}: {body}");
            } else {
                assert_eq!(id, None, "{sender} in {room}: {body}");
                assert!(reply_is_refusal(&step), "{sender} in {room}: {body}");
            }
            if let Some(id) = id {
                harness.core.cancel(id);
            }
        }
    }
}

fn reply_is_refusal(step: &Step) -> bool {
    matches!(step, Step::Reply { reply, .. } if reply.body.contains("not allowed"))
}

#[test]
fn non_commands_are_ignored() {
    let mut harness = Harness::new();
    for body in ["hello", "!tokens", "token list"] {
        let (id, step) = harness.send_as("@mallory:example.org", ROOM, body);
        assert_eq!(id, None);
        assert!(matches!(step, Step::Ignore { .. }), "{body}");
    }
}

#[test]
fn config_problems_are_replied() {
    let mut core = mas_token_core::Core::new();
    let mut config = config();
    config.as_object_mut().map(|map| map.remove("admin_api"));
    let configured = core.configure(&config);
    assert_eq!(configured.problems.len(), 1);

    let message = mas_token_core::protocol::Message {
        sender: ALICE.to_owned(),
        room_id: ROOM.to_owned(),
        body: "!token list".to_owned(),
        internal: false,
    };
    let (id, step) = core.start(NOW_MS, &message).expect("clock in range");
    assert_eq!(id, None);
    assert!(reply(&step).body.contains("`admin_api` is missing"), "{}", reply(&step).body);

    core.configure(&common::config());
    let (id, _) = core.start(NOW_MS, &message).expect("clock in range");
    assert!(id.is_some());
}

#[test]
fn broken_whitelist_refuses_everyone_with_the_reason() {
    let mut core = mas_token_core::Core::new();
    let mut config = config();
    config["whitelist"] = json!("@alice:example.org");
    config["token_url"] = json!("secret-pasted-into-the-wrong-key");
    core.configure(&config);
    let message = mas_token_core::protocol::Message {
        sender: ALICE.to_owned(),
        room_id: ROOM.to_owned(),
        body: "!token list".to_owned(),
        internal: false,
    };
    let (id, step) = core.start(NOW_MS, &message).expect("clock in range");
    assert_eq!(id, None);
    assert!(reply(&step).body.contains("`whitelist` is malformed"), "{}", reply(&step).body);
    // Anyone may read this reply, so other keys' values stay out of it.
    assert!(!reply(&step).body.contains("secret-pasted-into-the-wrong-key"), "{}", reply(&step).body);
}

#[test]
fn interleaved_commands_keep_their_state() {
    let mut harness = Harness::new();
    let (first, _) = start_with_token(&mut harness, "!token delete first-token");
    let (second, step) = harness.send(&format!("!token unrevoke {RECORDED_ID}"));
    let second = second.expect("waits");
    assert!(http_request(&step).url.ends_with("/unrevoke"), "token already cached");

    let step = harness.respond(second, recorded("044-unrevoke"));
    assert!(reply(&step).body.contains("Unrevoked"));

    let target = ulid_for(9);
    let step = harness.respond(first, page(vec![resource(&target, "first-token")], false));
    assert!(http_request(&step).url.ends_with(&format!("/{target}/revoke")));
}

#[test]
fn unknown_command_id_is_an_error() {
    let mut harness = Harness::new();
    let result = harness.core.resume(42, NOW_MS, mas_token_core::protocol::Outcome::Response(HttpResponse::default()));
    assert!(result.is_err());
}

#[test]
fn replies_escape_token_strings() {
    let mut harness = Harness::new();
    let (id, _) = start_with_token(&mut harness, "!token list <script>");
    let step = harness.respond(id, page(vec![resource(&ulid_for(1), "<script>")], false));
    let reply = reply(&step);
    assert!(!reply.html.contains("<script>"));
    assert!(reply.html.contains("&lt;script&gt;"));
}
