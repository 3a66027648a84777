//! A harness that drives [`Core`] the way the host does, with responses
//! taken from the recorded exchanges with a real MAS 1.22 where they fit.

#![allow(dead_code)]

use mas_token_core::protocol::{
    FailureKind, HttpRequest, HttpResponse, Message, Outcome, Reply, Step, TransportFailure,
};
use mas_token_core::Core;
use serde_json::{json, Value};

/// 2026-12-04 20:00:00 UTC.
pub const NOW_MS: i64 = 1_796_414_400_000;
pub const ADMIN_API: &str = "https://example.org/mas/api/admin";
pub const TOKEN_URL: &str = "https://example.org/mas/oauth2/token";
pub const ALICE: &str = "@alice:example.org";
pub const ROOM: &str = "!room:example.org";
pub const ADMIN_ROOM: &str = "!admins:example.org";

pub fn config() -> Value {
    json!({
        "admin_api": ADMIN_API,
        "token_url": TOKEN_URL,
        "client_id": "01JD4ZQ7X6G8K2N3P5R7T9V1W3",
        "client_secret": "not-a-real-secret",
        "token_scope": "urn:mas:admin",
        "default_uses_allowed": 1,
        "default_expiry_time": 604800,
        "base_command": "token",
        "whitelist": [ALICE],
        "room_whitelist": [ADMIN_ROOM],
        "http_timeout": 10,
    })
}

pub struct Harness {
    pub core: Core,
    pub now_ms: i64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(config())
    }

    pub fn with_config(config: Value) -> Harness {
        let mut core = Core::new();
        let configured = core.configure(&config);
        assert!(configured.problems.is_empty(), "{:?}", configured.problems);
        Harness { core, now_ms: NOW_MS }
    }

    pub fn send_as(&mut self, sender: &str, room_id: &str, body: &str) -> (Option<u32>, Step) {
        let message = Message {
            sender: sender.to_owned(),
            room_id: room_id.to_owned(),
            body: body.to_owned(),
            internal: false,
        };
        self.core.start(self.now_ms, &message).expect("clock in range")
    }

    pub fn send(&mut self, body: &str) -> (Option<u32>, Step) {
        self.send_as(ALICE, ROOM, body)
    }

    pub fn respond(&mut self, id: u32, response: HttpResponse) -> Step {
        self.core
            .resume(id, self.now_ms, Outcome::Response(response))
            .expect("command in flight")
    }

    pub fn fail(&mut self, id: u32, kind: FailureKind) -> Step {
        let failure = TransportFailure { kind, message: "test failure".to_owned() };
        self.core
            .resume(id, self.now_ms, Outcome::Failure(failure))
            .expect("command in flight")
    }

    /// Responds to the token request that a first command makes.
    pub fn grant_token(&mut self, id: u32, step: &Step) -> Step {
        let request = http_request(step);
        assert_eq!(request.url, TOKEN_URL);
        self.respond(id, token_granted())
    }
}

/// Sends a command, responds to the token request it starts with, and returns
/// the command's ID and its first admin API step.
pub fn start_with_token(harness: &mut Harness, body: &str) -> (u32, Step) {
    let (id, step) = harness.send(body);
    let id = id.expect("command waits on a request");
    let step = harness.grant_token(id, &step);
    (id, step)
}

pub fn http_request(step: &Step) -> &HttpRequest {
    match step {
        Step::Http { request, .. } => request,
        other => panic!("expected an HTTP step, got {other:?}"),
    }
}

pub fn reply(step: &Step) -> &Reply {
    match step {
        Step::Reply { reply, .. } => reply,
        other => panic!("expected a reply, got {other:?}"),
    }
}

pub fn log_text(step: &Step) -> String {
    let log = match step {
        Step::Http { log, .. } | Step::Reply { log, .. } | Step::Ignore { log } => log,
    };
    log.iter().map(|line| line.message.clone()).collect::<Vec<_>>().join("\n")
}

pub fn json_response(status: u16, body: Value) -> HttpResponse {
    HttpResponse {
        status,
        content_type: Some("application/json".to_owned()),
        body: body.to_string(),
        ..HttpResponse::default()
    }
}

pub fn token_granted() -> HttpResponse {
    HttpResponse {
        access_token_stored: true,
        ..json_response(200, json!({"token_type": "Bearer", "expires_in": 300, "scope": "urn:mas:admin"}))
    }
}

/// Recorded exchanges with a real MAS 1.22, compiled in so that the tests
/// also run as wasm, where there is no file system. The shared/ folder
/// with the recordings must sit beside the repository.
const RECORDINGS: &[(&str, &str)] = &[
    ("002-token-client-credentials-wrong-secret", include_str!("../../../../shared/mas-real/002-token-client-credentials-wrong-secret.json")),
    ("003-token-client-credentials-scope-not-allowed", include_str!("../../../../shared/mas-real/003-token-client-credentials-scope-not-allowed.json")),
    ("009-list-empty", include_str!("../../../../shared/mas-real/009-list-empty.json")),
    ("013-list-valid-token-without-admin-scope", include_str!("../../../../shared/mas-real/013-list-valid-token-without-admin-scope.json")),
    ("015-create-usage-limit-and-expiry", include_str!("../../../../shared/mas-real/015-create-usage-limit-and-expiry.json")),
    ("017-create-custom-token-duplicate", include_str!("../../../../shared/mas-real/017-create-custom-token-duplicate.json")),
    ("038-get-path-encoded-dotdot", include_str!("../../../../shared/mas-real/038-get-path-encoded-dotdot.json")),
    ("041-revoke", include_str!("../../../../shared/mas-real/041-revoke.json")),
    ("042-revoke-again-already-revoked", include_str!("../../../../shared/mas-real/042-revoke-again-already-revoked.json")),
    ("044-unrevoke", include_str!("../../../../shared/mas-real/044-unrevoke.json")),
    ("045-unrevoke-again-not-revoked", include_str!("../../../../shared/mas-real/045-unrevoke-again-not-revoked.json")),
    ("046-revoke-unknown-ulid-404", include_str!("../../../../shared/mas-real/046-revoke-unknown-ulid-404.json")),
    ("104-list-expired-admin-token", include_str!("../../../../shared/mas-real/104-list-expired-admin-token.json")),
];

/// Returns the response of a recorded exchange, as the host would pass it in.
pub fn recorded(name: &str) -> HttpResponse {
    let text = RECORDINGS
        .iter()
        .find(|(recording, _)| *recording == name)
        .map(|(_, text)| *text)
        .unwrap_or_else(|| panic!("recording {name} is not in RECORDINGS"));
    let exchange: Value = serde_json::from_str(text).expect("recording is JSON");
    let response = &exchange["response"];

    let content_type = response["headers"]["content-type"].as_str().map(str::to_owned);
    let body = match &response["body"] {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    HttpResponse {
        status: response["status"].as_u64().expect("status") as u16,
        content_type,
        body,
        ..HttpResponse::default()
    }
}

/// Builds a registration-token resource as MAS lists it.
pub fn resource(id: &str, token: &str) -> Value {
    json!({
        "type": "user-registration_token",
        "id": id,
        "attributes": {
            "token": token,
            "valid": true,
            "usage_limit": null,
            "times_used": 0,
            "created_at": "2026-12-04T19:39:40.469932Z",
            "last_used_at": null,
            "expires_at": null,
            "revoked_at": null
        },
        "links": {"self": format!("/api/admin/v1/user-registration-tokens/{id}")},
        "meta": {"page": {"cursor": id}}
    })
}

/// Returns a ULID whose order follows `index`.
pub fn ulid_for(index: u64) -> String {
    ulid::Ulid::from_parts(1_796_414_000_000 + index, u128::from(index)).to_string()
}

/// Builds a list page of `tokens`, with `links.next` when `has_next`. The links
/// are root-relative, without the reverse-proxy prefix, as MAS writes them.
pub fn page(tokens: Vec<Value>, has_next: bool) -> HttpResponse {
    let mut links = json!({
        "self": "/api/admin/v1/user-registration-tokens?page[first]=1000",
        "first": "/api/admin/v1/user-registration-tokens?page[first]=1000",
        "last": "/api/admin/v1/user-registration-tokens?page[last]=1000",
    });
    if has_next {
        let last = tokens.last().and_then(|token| token["id"].as_str()).unwrap_or("");
        links["next"] = json!(format!("/api/admin/v1/user-registration-tokens?page[after]={last}&page[first]=1000"));
    }
    json_response(200, json!({"data": tokens, "links": links}))
}

/// Builds a single-resource document.
pub fn single(resource: Value) -> HttpResponse {
    let id = resource["id"].as_str().unwrap_or("").to_owned();
    json_response(200, json!({"data": resource, "links": {"self": format!("/api/admin/v1/user-registration-tokens/{id}")}}))
}
