//! The plugin configuration, checked key by key.
//!
//! A broken value never stops the plugin: each one becomes a problem message
//! that names the key and the fix, the key falls back to a safe default, and
//! commands reply with the problems until the config is fixed.

use serde_json::{Map, Value};

/// Largest accepted `default_expiry_time`: 100 years, in seconds.
const MAX_EXPIRY_SECONDS: u64 = 100 * 366 * 24 * 60 * 60;

/// Accepted range of `http_timeout`, in seconds.
const MIN_HTTP_TIMEOUT_SECONDS: f64 = 0.1;
const MAX_HTTP_TIMEOUT_SECONDS: f64 = 300.0;

/// Maximum length of `base_command`, in characters.
const MAX_BASE_COMMAND_CHARS: usize = 32;

const KNOWN_KEYS: &[&str] = &[
    "mas_url",
    "admin_api",
    "token_url",
    "client_id",
    "client_secret",
    "token_scope",
    "default_uses_allowed",
    "default_expiry_time",
    "base_command",
    "whitelist",
    "room_whitelist",
    "http_timeout",
];

/// A checked configuration. Values whose key had a problem hold defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// MAS public base URL without a trailing slash; empty when not set.
    pub mas_url: String,
    /// MAS admin API base URL without a trailing slash, e.g. `https://mas.example.org/api/admin`.
    pub admin_api: String,
    /// Empty when it is to be found through OpenID discovery at `mas_url`.
    pub token_url: String,
    pub client_id: String,
    pub token_scope: String,
    /// Usage limit for `generate` without a count; `None` means unlimited.
    pub default_uses: Option<u32>,
    /// Lifetime in seconds for `generate` without an expiry; `None` means never.
    pub default_expiry_seconds: Option<u64>,
    /// Root command without the leading `!`, lower-case.
    pub base_command: String,
    pub whitelist: Vec<String>,
    pub room_whitelist: Vec<String>,
    pub http_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mas_url: String::new(),
            admin_api: String::new(),
            token_url: String::new(),
            client_id: String::new(),
            token_scope: "urn:mas:admin".to_owned(),
            default_uses: Some(1),
            default_expiry_seconds: Some(7 * 24 * 60 * 60),
            base_command: "token".to_owned(),
            whitelist: Vec::new(),
            room_whitelist: Vec::new(),
            http_timeout_ms: 10_000,
        }
    }
}

/// The result of checking a configuration.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub config: Config,
    /// Values that make the bot unusable until fixed, one sentence each.
    pub problems: Vec<String>,
    /// Values that work but look wrong (unknown keys, unusual client IDs).
    pub warnings: Vec<String>,
    /// The problems with `whitelist` and `room_whitelist` (or with the whole
    /// config), which stop the bot from telling who is allowed, so it
    /// refuses everyone. Also in `problems`.
    pub authorization_problems: Vec<String>,
}

impl Checked {
    pub fn authorization_broken(&self) -> bool {
        !self.authorization_problems.is_empty()
    }
}

/// Check a configuration given as JSON (maubot's YAML, converted by the host).
pub fn check(value: &Value) -> Checked {
    let mut checked = Checked::default();

    let Some(map) = value.as_object() else {
        let problem = "The configuration is not a mapping of keys to values.".to_owned();
        checked.problems.push(problem.clone());
        checked.authorization_problems.push(problem);
        return checked;
    };

    let mut reader = Reader {
        map,
        problems: Vec::new(),
    };
    let config = &mut checked.config;

    // Explicit URLs win; `mas_url` fills in the ones left empty.
    config.mas_url = reader.optional_url("mas_url", "https://mas.example.org").unwrap_or_default();
    let has_mas_url = !config.mas_url.is_empty();
    config.admin_api = match reader.optional_url("admin_api", "https://mas.example.org/api/admin") {
        Some(url) => url,
        None if has_mas_url => format!("{}/api/admin", config.mas_url),
        None => reader.missing("admin_api", "or set `mas_url`"),
    };
    config.token_url = match reader.optional_url("token_url", "https://mas.example.org/oauth2/token") {
        Some(url) => url,
        None if has_mas_url => String::new(),
        None => reader.missing("token_url", "or set `mas_url`"),
    };
    config.client_id = reader.required_string("client_id");
    reader.required_secret("client_secret");
    if let Some(scope) = reader.optional_string("token_scope") {
        config.token_scope = scope;
    }
    if let Some(uses) = reader.default_uses() {
        config.default_uses = uses;
    }
    if let Some(expiry) = reader.default_expiry() {
        config.default_expiry_seconds = expiry;
    }
    if let Some(command) = reader.base_command() {
        config.base_command = command;
    }
    if let Some(timeout) = reader.http_timeout() {
        config.http_timeout_ms = timeout;
    }

    let problems_before_lists = reader.problems.len();
    config.whitelist = reader.id_list("whitelist", '@', "a Matrix user ID like @alice:example.org");
    config.room_whitelist =
        reader.id_list("room_whitelist", '!', "a room ID like !AbCdEf:example.org");
    // Anyone may read the reply that names these, so they carry no values.
    for (key, example) in [("whitelist", "Matrix user IDs like @alice:example.org"), ("room_whitelist", "room IDs like !AbCdEf:example.org")] {
        let prefix = format!("`{key}`");
        if reader.problems[problems_before_lists..].iter().any(|problem| problem.starts_with(&prefix)) {
            checked
                .authorization_problems
                .push(format!("`{key}` is malformed: it must be a list of {example}."));
        }
    }
    checked.problems = reader.problems;

    for key in map.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            checked
                .warnings
                .push(format!("Unknown configuration key `{key}` is ignored."));
        }
    }
    if !config.client_id.is_empty() && config.client_id.parse::<ulid::Ulid>().is_err() {
        checked.warnings.push(
            "`client_id` is not a ULID; MAS expects the IDs of clients in its config to be ULIDs (check that it is not the secret)."
                .to_owned(),
        );
    }

    checked
}

struct Reader<'a> {
    map: &'a Map<String, Value>,
    problems: Vec<String>,
}

impl<'a> Reader<'a> {
    fn present(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    fn required_string(&mut self, key: &str) -> String {
        match self.present(key) {
            None => {
                self.problems.push(format!("`{key}` is missing: set it in the plugin config."));
                String::new()
            }
            Some(Value::String(text)) if text.trim().is_empty() => {
                self.problems.push(format!("`{key}` is empty: set it in the plugin config."));
                String::new()
            }
            Some(Value::String(text)) => text.trim().to_owned(),
            Some(other) => {
                self.problems.push(format!(
                    "`{key}` must be a string, not {}.",
                    describe(other)
                ));
                String::new()
            }
        }
    }

    /// Like `required_string`, but a problem names only the value's type,
    /// because messages reach the log and the room.
    fn required_secret(&mut self, key: &str) {
        match self.present(key) {
            None => self.problems.push(format!("`{key}` is missing: set it in the plugin config.")),
            Some(Value::String(text)) if text.trim().is_empty() => {
                self.problems.push(format!("`{key}` is empty: set it in the plugin config."))
            }
            Some(Value::String(_)) => {}
            Some(other) => self.problems.push(format!(
                "`{key}` must be a string; put its value in quotes (it is {}).",
                kind_of(other)
            )),
        }
    }

    fn optional_string(&mut self, key: &str) -> Option<String> {
        match self.present(key)? {
            Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            Value::String(_) => None,
            other => {
                self.problems.push(format!(
                    "`{key}` must be a string, not {}.",
                    describe(other)
                ));
                None
            }
        }
    }

    /// Records a missing or empty key; returns the empty default.
    fn missing(&mut self, key: &str, alternative: &str) -> String {
        let state = if self.present(key).is_some() { "empty" } else { "missing" };
        self.problems.push(format!("`{key}` is {state}: set it in the plugin config, {alternative}."));
        String::new()
    }

    /// An http(s) URL without a trailing slash. `None` when absent or empty;
    /// an invalid value is recorded as a problem and gives `Some("")`.
    fn optional_url(&mut self, key: &str, example: &str) -> Option<String> {
        let text = match self.present(key)? {
            Value::String(text) if text.trim().is_empty() => return None,
            Value::String(text) => text.trim().to_owned(),
            other => {
                self.problems.push(format!("`{key}` must be a string, not {}.", describe(other)));
                return Some(String::new());
            }
        };

        // The value is not repeated in the message: a URL with a password or
        // a secret in its query would otherwise reach the log and the room.
        let valid = match text.parse::<http::Uri>() {
            Ok(uri) => {
                let scheme_ok = matches!(uri.scheme_str(), Some("http") | Some("https"));
                let credentials = uri.authority().is_some_and(|authority| authority.as_str().contains('@'));
                scheme_ok && uri.authority().is_some() && uri.query().is_none() && !credentials
            }
            Err(_) => false,
        };
        if !valid || text.contains('#') {
            self.problems.push(format!(
                "`{key}` must be an http(s) URL without a user name, password, query or fragment. Example: {example}"
            ));
            return Some(String::new());
        }

        Some(text.trim_end_matches('/').to_owned())
    }

    fn whole_number(&mut self, key: &str, value: &Value) -> Option<u64> {
        let number = value.as_u64();
        if number.is_none() {
            self.problems.push(format!(
                "`{key}` must be a whole number, not {}.",
                describe(value)
            ));
        }
        number
    }

    /// Returns `Some(None)` for unlimited, `None` when absent or invalid.
    fn default_uses(&mut self) -> Option<Option<u32>> {
        const KEY: &str = "default_uses_allowed";
        let value = self.map.get(KEY)?;
        if value.is_null() {
            return Some(None);
        }

        if value.as_i64().is_some_and(|number| number < 1) {
            self.problems.push(format!(
                "`{KEY}` must be from 1 to 4294967295, or null for unlimited uses; got {value}."
            ));
            return None;
        }
        let number = self.whole_number(KEY, value)?;
        match u32::try_from(number) {
            Ok(uses) if uses >= 1 => Some(Some(uses)),
            _ => {
                self.problems.push(format!(
                    "`{KEY}` must be from 1 to 4294967295, or null for unlimited uses; got {number}."
                ));
                None
            }
        }
    }

    /// Returns `Some(None)` for no expiry, `None` when absent or invalid.
    fn default_expiry(&mut self) -> Option<Option<u64>> {
        const KEY: &str = "default_expiry_time";
        let value = self.map.get(KEY)?;
        if value.is_null() {
            return Some(None);
        }

        if value.as_i64().is_some_and(|number| number < 0) {
            self.problems.push(format!(
                "`{KEY}` must be 0 or more seconds (0 or null: no expiry); got {value}."
            ));
            return None;
        }
        let seconds = self.whole_number(KEY, value)?;
        if seconds == 0 {
            return Some(None);
        }
        if seconds > MAX_EXPIRY_SECONDS {
            self.problems.push(format!(
                "`{KEY}` is {seconds} seconds, more than 100 years; use 0 or null for no expiry."
            ));
            return None;
        }
        Some(Some(seconds))
    }

    fn base_command(&mut self) -> Option<String> {
        const KEY: &str = "base_command";
        let text = self.optional_string(KEY)?;
        let name = text.trim_start_matches('!').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= MAX_BASE_COMMAND_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            self.problems.push(format!(
                "`{KEY}` must be one word of at most {MAX_BASE_COMMAND_CHARS} letters, digits, - or _, such as \"token\"."
            ));
            return None;
        }
        Some(name)
    }

    fn http_timeout(&mut self) -> Option<u64> {
        const KEY: &str = "http_timeout";
        let value = self.present(KEY)?;
        match value.as_f64() {
            Some(seconds) if (MIN_HTTP_TIMEOUT_SECONDS..=MAX_HTTP_TIMEOUT_SECONDS).contains(&seconds) => {
                // The range check above keeps this product well inside u64.
                Some((seconds * 1000.0).round() as u64)
            }
            _ => {
                self.problems.push(format!(
                    "`{KEY}` must be a number of seconds from 0.1 to 300, not {}.",
                    describe(value)
                ));
                None
            }
        }
    }

    fn id_list(&mut self, key: &str, sigil: char, example: &str) -> Vec<String> {
        let Some(value) = self.present(key) else {
            return Vec::new();
        };
        let Some(items) = value.as_array() else {
            self.problems.push(format!(
                "`{key}` must be a list, not {}. Each entry is {example}.",
                describe(value)
            ));
            return Vec::new();
        };

        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            match item.as_str().map(str::trim) {
                Some(id) if is_matrix_id(id, sigil) => ids.push(id.to_owned()),
                Some(id) if sigil == '!' && id.starts_with('#') => self.problems.push(format!(
                    "`{key}` entry {id:?} is a room alias; use the room ID instead (in Element: Room settings, Advanced)."
                )),
                _ => self.problems.push(format!(
                    "`{key}` entry {} is not {example}.",
                    describe(item)
                )),
            }
        }
        ids
    }
}

/// Checks the outline of a Matrix ID: the sigil, a non-empty rest, no
/// whitespace, and for user IDs a `:server` part. Room IDs of room version 12
/// have no server part, so it is optional for them.
fn is_matrix_id(id: &str, sigil: char) -> bool {
    let Some(rest) = id.strip_prefix(sigil) else {
        return false;
    };
    if rest.is_empty() || rest.chars().any(char::is_whitespace) {
        return false;
    }
    match rest.split_once(':') {
        Some((local, server)) => !local.is_empty() && !server.is_empty(),
        None => sigil == '!',
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("the boolean {flag}"),
        // Whole numbers only: formatting floats would add float-printing
        // code to the wasm module for the sake of one message.
        Value::Number(number) => match (number.as_i64(), number.as_u64()) {
            (Some(whole), _) => format!("the number {whole}"),
            (None, Some(whole)) => format!("the number {whole}"),
            (None, None) if number.as_f64().is_some_and(|value| value.fract() == 0.0) => {
                "a number out of range".to_owned()
            }
            (None, None) => "a fractional number".to_owned(),
        },
        Value::String(text) => format!("the string {text:?}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use serde_json::json;

    use super::*;

    fn valid() -> Value {
        json!({
            "admin_api": "https://mas.example.org/api/admin/",
            "token_url": "https://mas.example.org/oauth2/token",
            "client_id": "01JD4ZQ7X6G8K2N3P5R7T9V1W3",
            "client_secret": "s3cret",
            "token_scope": "urn:mas:admin",
            "default_uses_allowed": 3,
            "default_expiry_time": 3600,
            "base_command": "!Tokens",
            "whitelist": ["@alice:example.org"],
            "room_whitelist": ["!room:example.org", "!v12roomid"],
            "http_timeout": 2.5,
        })
    }

    fn with(key: &str, value: Value) -> Value {
        let mut config = valid();
        config[key] = value;
        config
    }

    fn problems_for(key: &str, value: Value) -> Vec<String> {
        check(&with(key, value)).problems
    }

    #[test]
    fn valid_config_has_no_problems() {
        let checked = check(&valid());
        assert_eq!(checked.problems, Vec::<String>::new());
        assert_eq!(checked.warnings, Vec::<String>::new());
        assert_eq!(checked.config.admin_api, "https://mas.example.org/api/admin");
        assert_eq!(checked.config.base_command, "tokens");
        assert_eq!(checked.config.default_uses, Some(3));
        assert_eq!(checked.config.default_expiry_seconds, Some(3600));
        assert_eq!(checked.config.http_timeout_ms, 2500);
        assert_eq!(checked.config.room_whitelist.len(), 2);
    }

    #[test]
    fn mas_url_fills_in_empty_urls() {
        let mut config = valid();
        config["mas_url"] = json!("https://auth.example.org/");
        config["admin_api"] = json!("");
        config.as_object_mut().map(|map| map.remove("token_url"));
        let checked = check(&config);
        assert_eq!(checked.problems, Vec::<String>::new());
        assert_eq!(checked.config.admin_api, "https://auth.example.org/api/admin");
        assert_eq!(checked.config.token_url, "");

        let mut explicit = valid();
        explicit["mas_url"] = json!("https://auth.example.org");
        let checked = check(&explicit);
        assert_eq!(checked.config.admin_api, "https://mas.example.org/api/admin");
        assert_eq!(checked.config.token_url, "https://mas.example.org/oauth2/token");
    }

    #[test]
    fn missing_required_keys_are_named() {
        for key in ["admin_api", "token_url", "client_id", "client_secret"] {
            let mut config = valid();
            config.as_object_mut().map(|map| map.remove(key));
            let problems = check(&config).problems;
            assert_eq!(problems.len(), 1, "{key}: {problems:?}");
            assert!(problems[0].contains(&format!("`{key}` is missing")), "{problems:?}");
        }
    }

    #[test]
    fn empty_secret_is_a_problem() {
        let problems = problems_for("client_secret", json!(""));
        assert!(problems[0].contains("`client_secret` is empty"), "{problems:?}");
    }

    #[test]
    fn non_url_token_url_is_a_problem() {
        let problems = problems_for("token_url", json!("mas.example.org/oauth2/token"));
        assert!(problems[0].contains("`token_url` must be an http(s) URL"), "{problems:?}");
        let problems = problems_for("admin_api", json!("ftp://mas.example.org/api/admin"));
        assert!(problems[0].contains("`admin_api`"), "{problems:?}");
    }

    #[test]
    fn whitelist_must_be_a_list() {
        let checked = check(&with("whitelist", json!("@alice:example.org")));
        assert!(checked.problems[0].contains("`whitelist` must be a list"));
        assert!(checked.authorization_broken());
    }

    #[test]
    fn whitelist_entries_are_checked() {
        let problems = problems_for("whitelist", json!(["alice", 5, "@bob:example.org"]));
        assert_eq!(problems.len(), 2, "{problems:?}");
        let problems = problems_for("room_whitelist", json!(["#admins:example.org"]));
        assert!(problems[0].contains("room alias"), "{problems:?}");
    }

    #[test]
    fn uses_and_expiry_ranges() {
        assert!(problems_for("default_uses_allowed", json!(-1))[0].contains("from 1 to"));
        assert!(problems_for("default_uses_allowed", json!(0))[0].contains("from 1 to"));
        assert!(problems_for("default_uses_allowed", json!(4294967296u64))[0].contains("from 1"));
        assert!(problems_for("default_expiry_time", json!("1d"))[0].contains("whole number"));
        assert!(problems_for("default_expiry_time", json!(1.5))[0].contains("whole number"));

        let unlimited = check(&with("default_uses_allowed", Value::Null));
        assert_eq!(unlimited.config.default_uses, None);
        let never = check(&with("default_expiry_time", json!(0)));
        assert_eq!(never.config.default_expiry_seconds, None);
    }

    #[test]
    fn wrong_types_are_named() {
        assert!(problems_for("token_scope", json!(["urn:mas:admin"]))[0].contains("`token_scope`"));
        assert!(problems_for("base_command", json!("two words"))[0].contains("`base_command`"));
        assert!(problems_for("http_timeout", json!(0))[0].contains("`http_timeout`"));
        assert!(problems_for("http_timeout", json!("ten"))[0].contains("`http_timeout`"));
    }

    #[test]
    fn unknown_keys_warn() {
        let checked = check(&with("admin_url", json!("x")));
        assert!(checked.problems.is_empty());
        assert!(checked.warnings[0].contains("`admin_url`"));
    }

    #[test]
    fn config_must_be_a_mapping() {
        let checked = check(&json!(["admin_api"]));
        assert_eq!(checked.problems.len(), 1);
        assert!(checked.authorization_broken());
    }

    #[test]
    fn urls_with_credentials_or_fragments_are_refused() {
        for url in [
            "https://user:pw@mas.example.org/api/admin",
            "https://mas.example.org/api/admin#frag",
            "https://mas.example.org/api/admin?secret=1",
        ] {
            let problems = problems_for("admin_api", json!(url));
            assert_eq!(problems.len(), 1, "{url}");
            assert!(!problems[0].contains("pw@") && !problems[0].contains("secret=1"), "{problems:?}");
        }
    }

    #[test]
    fn whitelist_problems_for_everyone_carry_no_values() {
        let checked = check(&with("whitelist", json!(["SOMESECRET"])));
        assert_eq!(checked.authorization_problems.len(), 1);
        assert!(!checked.authorization_problems[0].contains("SOMESECRET"));
        assert!(checked.problems.iter().any(|problem| problem.contains("SOMESECRET")));
    }

    #[test]
    fn tiny_timeouts_and_long_commands_are_refused() {
        assert!(problems_for("http_timeout", json!(0.0001))[0].contains("from 0.1 to 300"));
        assert!(problems_for("base_command", json!("x".repeat(33)))[0].contains("at most 32"));
        assert!(problems_for("http_timeout", json!(1e308))[0].contains("out of range") || problems_for("http_timeout", json!(1e308))[0].contains("from 0.1"));
    }

    #[test]
    fn secret_value_is_never_repeated() {
        let problems = problems_for("client_secret", json!(123456789012345u64));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("`client_secret` must be a string"), "{problems:?}");
        assert!(!problems[0].contains("123456789012345"), "{problems:?}");
    }

    #[test]
    fn negative_expiry_names_the_range() {
        let problems = problems_for("default_expiry_time", json!(-5));
        assert!(problems[0].contains("0 or more seconds"), "{problems:?}");
    }

    #[test]
    fn secret_is_not_kept() {
        let checked = check(&valid());
        assert!(!format!("{:?}", checked.config).contains("s3cret"));
    }
}
