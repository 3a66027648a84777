//! Who may run commands.

use crate::config::Config;

/// The outcome of checking a sender against the whitelists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The sender is listed in `whitelist`.
    AllowedUser,
    /// The room is listed in `room_whitelist`, so everyone in it is allowed.
    AllowedRoom,
    Denied,
}

/// Decide whether `sender` may run commands in `room_id`. Matrix IDs are
/// compared exactly, because the spec makes them case-sensitive.
pub fn authorize(config: &Config, sender: &str, room_id: &str) -> Decision {
    if config.whitelist.iter().any(|user| user == sender) {
        return Decision::AllowedUser;
    }
    if config.room_whitelist.iter().any(|room| room == room_id) {
        return Decision::AllowedRoom;
    }
    Decision::Denied
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn config() -> Config {
        Config {
            whitelist: vec!["@alice:example.org".to_owned()],
            room_whitelist: vec!["!admins:example.org".to_owned()],
            ..Config::default()
        }
    }

    #[test]
    fn authorization_table() {
        let cases = [
            ("@alice:example.org", "!any:example.org", Decision::AllowedUser),
            ("@alice:example.org", "!admins:example.org", Decision::AllowedUser),
            ("@bob:example.org", "!admins:example.org", Decision::AllowedRoom),
            ("@bob:example.org", "!other:example.org", Decision::Denied),
            ("@mallory:example.org", "!any:example.org", Decision::Denied),
            ("@Alice:example.org", "!any:example.org", Decision::Denied),
            ("@alice:example.org.evil", "!any:example.org", Decision::Denied),
            ("@bob:example.org", "!ADMINS:example.org", Decision::Denied),
            ("", "", Decision::Denied),
        ];
        for (sender, room, expected) in cases {
            assert_eq!(authorize(&config(), sender, room), expected, "{sender} in {room}");
        }
    }

    #[test]
    fn empty_whitelists_deny_everyone() {
        let empty = Config::default();
        assert_eq!(authorize(&empty, "@alice:example.org", "!admins:example.org"), Decision::Denied);
    }
}
