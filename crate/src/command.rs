//! Parsing chat messages into commands.

use crate::ident::TokenRef;

/// Largest usage limit MAS stores (`usage_limit` is an unsigned 32-bit integer).
pub const MAX_USES: u64 = u32::MAX as u64;

/// Largest expiry accepted on the command line: 100 years, in seconds.
pub const MAX_EXPIRY_SECONDS: u64 = 100 * 366 * 24 * 60 * 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    /// `list` alone lists every token; with an argument it shows one token.
    List(Option<TokenRef>),
    /// `None` fields fall back to the config's defaults.
    Generate {
        uses: Option<u32>,
        expiry_seconds: Option<u64>,
    },
    Revoke(TokenRef),
    Unrevoke(TokenRef),
}

/// What a chat message turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not addressed to this bot.
    NotCommand,
    Command(Command),
    /// Addressed to the bot but malformed; the text explains what is wrong.
    Invalid(UsageError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// The subcommand whose usage line to show, if one was recognised.
    pub subcommand: Option<Subcommand>,
    pub problem: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subcommand {
    Help,
    List,
    Generate,
    Revoke,
    Unrevoke,
}

impl Subcommand {
    /// Every subcommand, in the order `help` shows them.
    pub const ALL: [Subcommand; 5] = [
        Subcommand::List,
        Subcommand::Generate,
        Subcommand::Revoke,
        Subcommand::Unrevoke,
        Subcommand::Help,
    ];

    fn from_word(word: &str) -> Option<Subcommand> {
        match word.to_lowercase().as_str() {
            "help" => Some(Subcommand::Help),
            "list" | "ls" | "info" | "show" => Some(Subcommand::List),
            "generate" | "new" | "create" => Some(Subcommand::Generate),
            "delete" | "revoke" => Some(Subcommand::Revoke),
            "unrevoke" | "restore" => Some(Subcommand::Unrevoke),
            _ => None,
        }
    }

    /// The argument synopsis shown after `!<base_command> <name>`.
    pub fn synopsis(self) -> (&'static str, &'static str) {
        match self {
            Subcommand::Help => ("help", ""),
            Subcommand::List => ("list", "[token|ULID]"),
            Subcommand::Generate => ("generate", "[uses] [expiry-seconds]"),
            Subcommand::Revoke => ("delete", "<token|ULID>"),
            Subcommand::Unrevoke => ("unrevoke", "<token|ULID>"),
        }
    }

    /// One sentence on what the subcommand does.
    pub fn summary(self) -> &'static str {
        match self {
            Subcommand::Help => "shows this help.",
            Subcommand::List => "lists all tokens, or shows one token in detail.",
            Subcommand::Generate => {
                "creates a token; omitted values come from the config's defaults."
            }
            Subcommand::Revoke => "revokes a token (MAS keeps revoked tokens; `unrevoke` restores them).",
            Subcommand::Unrevoke => "restores a revoked token.",
        }
    }
}

/// Parse a message body. `base_command` is lower-case, without the `!`.
pub fn parse(body: &str, base_command: &str) -> Parsed {
    let text = strip_reply_fallback(body);

    let (first, after_first) = split_first_word(text);
    if first.is_empty() {
        return Parsed::NotCommand;
    }
    let is_ours = first
        .strip_prefix('!')
        .is_some_and(|name| name.eq_ignore_ascii_case(base_command));
    if !is_ours {
        return Parsed::NotCommand;
    }

    let (word, rest) = split_first_word(after_first);
    if word.is_empty() {
        return Parsed::Command(Command::Help);
    }
    let Some(subcommand) = Subcommand::from_word(word) else {
        return Parsed::Invalid(UsageError {
            subcommand: None,
            problem: format!("Unknown subcommand `{word}`."),
        });
    };

    let rest = rest.trim();
    let args: Vec<&str> = rest.split_whitespace().collect();
    match parse_subcommand(subcommand, rest, &args) {
        Ok(command) => Parsed::Command(command),
        Err(problem) => Parsed::Invalid(UsageError {
            subcommand: Some(subcommand),
            problem,
        }),
    }
}

fn parse_subcommand(subcommand: Subcommand, rest: &str, args: &[&str]) -> Result<Command, String> {
    match subcommand {
        Subcommand::Help => Ok(Command::Help),
        Subcommand::List if rest.is_empty() => Ok(Command::List(None)),
        Subcommand::List => Ok(Command::List(Some(TokenRef::parse(rest)))),
        Subcommand::Revoke => token_argument(rest).map(Command::Revoke),
        Subcommand::Unrevoke => token_argument(rest).map(Command::Unrevoke),
        Subcommand::Generate => parse_generate(args),
    }
}

/// The token argument is the rest of the line, so token strings that contain
/// spaces can be named too.
fn token_argument(rest: &str) -> Result<TokenRef, String> {
    if rest.is_empty() {
        return Err("Name the token by its string or its ULID.".to_owned());
    }
    Ok(TokenRef::parse(rest))
}

fn parse_generate(args: &[&str]) -> Result<Command, String> {
    if args.len() > 2 {
        return Err(format!(
            "Expected at most two values (uses, expiry in seconds), got {}.",
            args.len()
        ));
    }

    let uses = match args.first() {
        Some(text) => Some(parse_uses(text)?),
        None => None,
    };
    let expiry_seconds = match args.get(1) {
        Some(text) => Some(parse_expiry(text)?),
        None => None,
    };

    Ok(Command::Generate {
        uses,
        expiry_seconds,
    })
}

fn parse_uses(text: &str) -> Result<u32, String> {
    let problem = || {
        format!("`uses` must be a whole number from 1 to {MAX_USES}, not `{text}`.")
    };
    let number = parse_digits(text).ok_or_else(problem)?;
    if number == 0 || number > MAX_USES {
        return Err(problem());
    }
    u32::try_from(number).map_err(|_| problem())
}

fn parse_expiry(text: &str) -> Result<u64, String> {
    let problem = || {
        format!("`expiry` must be a whole number of seconds greater than 0 (at most 100 years), not `{text}`.")
    };
    let seconds = parse_digits(text).ok_or_else(problem)?;
    if seconds == 0 || seconds > MAX_EXPIRY_SECONDS {
        return Err(problem());
    }
    Ok(seconds)
}

/// Parses ASCII digits only: no sign, no fraction, no exponent, no spaces.
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Splits off the first whitespace-separated word; both parts may be empty.
fn split_first_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], &text[end..]),
        None => (text, ""),
    }
}

/// Drops the quoted fallback that some clients put before a reply's text:
/// leading lines that start with `>`, up to the first blank line.
fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    match body.find("\n\n") {
        Some(end) => &body[end + 2..],
        None => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(body: &str) -> Command {
        match parse(body, "token") {
            Parsed::Command(command) => command,
            other => panic!("{body:?} parsed as {other:?}"),
        }
    }

    fn usage_problem(body: &str) -> String {
        match parse(body, "token") {
            Parsed::Invalid(error) => error.problem,
            other => panic!("{body:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn other_messages_are_not_commands() {
        for body in ["", "hello", "!tokens list", "token list", " !other", "!tokenlist"] {
            assert_eq!(parse(body, "token"), Parsed::NotCommand, "{body:?}");
        }
    }

    #[test]
    fn root_command_alone_is_help() {
        assert_eq!(command("!token"), Command::Help);
        assert_eq!(command("  !TOKEN  "), Command::Help);
        assert_eq!(command("!token help"), Command::Help);
    }

    #[test]
    fn base_command_is_configurable() {
        assert_eq!(parse("!token list", "regtoken"), Parsed::NotCommand);
        assert!(matches!(parse("!regtoken list", "regtoken"), Parsed::Command(Command::List(None))));
    }

    #[test]
    fn list_with_and_without_token() {
        assert_eq!(command("!token list"), Command::List(None));
        assert_eq!(command("!token ls"), Command::List(None));
        let Command::List(Some(token)) = command("!token list abc123def456") else {
            panic!("expected a token");
        };
        assert_eq!(token.text, "abc123def456");
        assert_eq!(token.ulid, None);
    }

    #[test]
    fn token_argument_keeps_case_and_inner_spaces() {
        let Command::Revoke(token) = command("!token delete  Welcome Friends ") else {
            panic!("expected revoke");
        };
        assert_eq!(token.text, "Welcome Friends");
    }

    #[test]
    fn token_named_like_the_command_is_kept() {
        let Command::Revoke(token) = command("!token delete token") else {
            panic!("expected revoke");
        };
        assert_eq!(token.text, "token");
    }

    #[test]
    fn delete_and_unrevoke_need_a_token() {
        assert!(usage_problem("!token delete").contains("Name the token"));
        assert!(usage_problem("!token unrevoke").contains("Name the token"));
    }

    #[test]
    fn ulid_argument_is_parsed() {
        let Command::Unrevoke(token) = command("!token unrevoke 01m9193jhnc5jd0y75tz19448t") else {
            panic!("expected unrevoke");
        };
        assert_eq!(
            token.ulid.map(|id| id.to_string()),
            Some("01M9193JHNC5JD0Y75TZ19448T".to_owned())
        );
    }

    #[test]
    fn generate_defaults_and_values() {
        assert_eq!(
            command("!token generate"),
            Command::Generate { uses: None, expiry_seconds: None }
        );
        assert_eq!(
            command("!token generate 5 86400"),
            Command::Generate { uses: Some(5), expiry_seconds: Some(86400) }
        );
        assert_eq!(
            command("!token generate 4294967295"),
            Command::Generate { uses: Some(u32::MAX), expiry_seconds: None }
        );
    }

    #[test]
    fn generate_rejects_bad_uses() {
        for uses in ["0", "-3", "two", "1.5", "99999999999", "+5", "1e3", "4294967296", "٣"] {
            let problem = usage_problem(&format!("!token generate {uses}"));
            assert!(problem.contains("`uses`"), "{uses}: {problem}");
        }
    }

    #[test]
    fn generate_rejects_bad_expiry() {
        for expiry in ["0", "-60", "1.5", "soon", "99999999999999999999"] {
            let problem = usage_problem(&format!("!token generate 1 {expiry}"));
            assert!(problem.contains("`expiry`"), "{expiry}: {problem}");
        }
    }

    #[test]
    fn generate_rejects_extra_values() {
        assert!(usage_problem("!token generate 1 60 extra").contains("at most two"));
    }

    #[test]
    fn unknown_subcommand_is_named() {
        assert!(usage_problem("!token frobnicate").contains("`frobnicate`"));
    }

    #[test]
    fn aliases_map_to_commands() {
        assert!(matches!(command("!token new"), Command::Generate { .. }));
        assert!(matches!(command("!token create 2"), Command::Generate { .. }));
        assert!(matches!(command("!token revoke x"), Command::Revoke(_)));
        assert!(matches!(command("!token restore x"), Command::Unrevoke(_)));
        assert!(matches!(command("!token show x"), Command::List(Some(_))));
        assert!(matches!(command("!token info x"), Command::List(Some(_))));
    }

    #[test]
    fn reply_fallback_is_skipped() {
        let body = "> <@bob:example.org> what tokens exist?\n\n!token list";
        assert_eq!(command(body), Command::List(None));
    }
}
