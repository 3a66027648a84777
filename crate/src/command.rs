//! Parsing chat messages into commands.

use crate::ident::TokenRef;
use crate::reply::echo;
use crate::time::Expiry;

/// Largest usage limit MAS stores (`usage_limit` is an unsigned 32-bit integer).
pub const MAX_USES: u64 = u32::MAX as u64;

/// A usage limit as a user types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uses {
    Limited(u32),
    Unlimited,
}

/// The token states a `list` can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    All,
    Valid,
    Invalid,
    Revoked,
    Expired,
    Used,
    Unused,
}

impl ListFilter {
    fn from_word(word: &str) -> Option<ListFilter> {
        match word.to_ascii_lowercase().as_str() {
            "valid" | "active" => Some(ListFilter::Valid),
            "invalid" => Some(ListFilter::Invalid),
            "revoked" => Some(ListFilter::Revoked),
            "expired" => Some(ListFilter::Expired),
            "used" => Some(ListFilter::Used),
            "unused" => Some(ListFilter::Unused),
            _ => None,
        }
    }
}

/// Values for `generate`; `None` fields fall back to the config's defaults,
/// and a `None` token string lets MAS generate one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenerateArgs {
    pub uses: Option<Uses>,
    pub expiry: Option<Expiry>,
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Status,
    List(ListFilter),
    Show(TokenRef),
    Generate(GenerateArgs),
    /// At least one of `uses` and `expiry` is set.
    Edit {
        target: TokenRef,
        uses: Option<Uses>,
        expiry: Option<Expiry>,
    },
    Revoke(TokenRef),
    Unrevoke(TokenRef),
}

/// The result of parsing a chat message.
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
    Status,
    List,
    Show,
    Generate,
    Edit,
    Revoke,
    Unrevoke,
}

impl Subcommand {
    /// Every subcommand, in the order `help` shows them.
    pub const ALL: [Subcommand; 8] = [
        Subcommand::List,
        Subcommand::Show,
        Subcommand::Generate,
        Subcommand::Edit,
        Subcommand::Revoke,
        Subcommand::Unrevoke,
        Subcommand::Status,
        Subcommand::Help,
    ];

    fn from_word(word: &str) -> Option<Subcommand> {
        match word.to_ascii_lowercase().as_str() {
            "help" => Some(Subcommand::Help),
            "status" => Some(Subcommand::Status),
            "list" | "ls" => Some(Subcommand::List),
            "show" | "info" => Some(Subcommand::Show),
            "generate" | "new" | "create" => Some(Subcommand::Generate),
            "edit" => Some(Subcommand::Edit),
            "delete" | "revoke" => Some(Subcommand::Revoke),
            "unrevoke" | "restore" => Some(Subcommand::Unrevoke),
            _ => None,
        }
    }

    /// Returns the name and argument synopsis shown after `!<base_command> `.
    pub fn synopsis(self) -> (&'static str, &'static str) {
        match self {
            Subcommand::Help => ("help", ""),
            Subcommand::Status => ("status", ""),
            Subcommand::List => ("list", "[valid|invalid|revoked|expired|used|unused|token|ULID]"),
            Subcommand::Show => ("show", "<token|ULID>"),
            Subcommand::Generate => ("generate", "[uses|unlimited] [expiry] [--token STRING]"),
            Subcommand::Edit => ("edit", "<token|ULID> [uses N|unlimited] [expires EXPIRY]"),
            Subcommand::Revoke => ("delete", "<token|ULID>"),
            Subcommand::Unrevoke => ("unrevoke", "<token|ULID>"),
        }
    }

    /// Other names that select the subcommand.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Subcommand::List => &["ls"],
            Subcommand::Show => &["info"],
            Subcommand::Generate => &["new", "create"],
            Subcommand::Revoke => &["revoke"],
            Subcommand::Unrevoke => &["restore"],
            Subcommand::Help | Subcommand::Status | Subcommand::Edit => &[],
        }
    }

    /// Returns one sentence on what the subcommand does.
    pub fn summary(self) -> &'static str {
        match self {
            Subcommand::Help => "shows this help.",
            Subcommand::Status => "checks the connection to MAS and reports what to fix.",
            Subcommand::List => "lists tokens with counts, all or by state, or shows one token.",
            Subcommand::Show => "shows one token in detail.",
            Subcommand::Generate => "creates a token; omitted values come from the config's defaults.",
            Subcommand::Edit => "changes a token's usage limit or expiry.",
            Subcommand::Revoke => "revokes a token; MAS keeps it, and unrevoke restores it.",
            Subcommand::Unrevoke => "restores a revoked token.",
        }
    }

    /// Arguments for the example line in `help`.
    pub fn example(self) -> &'static str {
        match self {
            Subcommand::Help | Subcommand::Status => "",
            Subcommand::List => "revoked",
            Subcommand::Show => "01JD4ZQ7X6G8K2N3P5R7T9V1W3",
            Subcommand::Generate => "5 7d --token welcome-2027",
            Subcommand::Edit => "welcome-2027 uses 10 expires 2027-01-31",
            Subcommand::Revoke => "welcome-2027",
            Subcommand::Unrevoke => "welcome-2027",
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
            problem: format!("Unknown subcommand `{}`.", echo(word)),
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
        Subcommand::Status => Ok(Command::Status),
        Subcommand::List if rest.is_empty() => Ok(Command::List(ListFilter::All)),
        Subcommand::List => match ListFilter::from_word(rest) {
            Some(filter) => Ok(Command::List(filter)),
            None => Ok(Command::Show(TokenRef::parse(rest))),
        },
        Subcommand::Show => token_argument(rest).map(Command::Show),
        Subcommand::Revoke => token_argument(rest).map(Command::Revoke),
        Subcommand::Unrevoke => token_argument(rest).map(Command::Unrevoke),
        Subcommand::Generate => parse_generate(args).map(Command::Generate),
        Subcommand::Edit => parse_edit(args),
    }
}

/// Parses the token argument, which is the rest of the line, so token strings that contain
/// spaces can be named too.
fn token_argument(rest: &str) -> Result<TokenRef, String> {
    if rest.is_empty() {
        return Err("Name the token by its string or its ULID.".to_owned());
    }
    Ok(TokenRef::parse(rest))
}

fn parse_generate(args: &[&str]) -> Result<GenerateArgs, String> {
    let mut generate = GenerateArgs::default();
    let mut positional = Vec::new();

    let mut index = 0;
    while index < args.len() {
        let arg = args[index];
        if let Some(value) = arg.strip_prefix("--token=") {
            generate.token = Some(custom_token(value)?);
        } else if arg == "--token" {
            index += 1;
            let value = args
                .get(index)
                .ok_or_else(|| "`--token` needs the token string after it.".to_owned())?;
            generate.token = Some(custom_token(value)?);
        } else if arg.starts_with("--") {
            return Err(format!("Unknown option `{}`; the only option is `--token`.", echo(arg)));
        } else {
            positional.push(arg);
        }
        index += 1;
    }

    let mut values = join_date_and_time(&positional).into_iter();
    if let Some(text) = values.next() {
        generate.uses = Some(parse_uses(&text)?);
    }
    if let Some(text) = values.next() {
        generate.expiry = Some(Expiry::parse(&text)?);
    }
    let extra: Vec<String> = values.collect();
    if !extra.is_empty() {
        return Err(format!(
            "Expected at most two values (uses, expiry), but `{}` is left over.",
            echo(&extra.join(" "))
        ));
    }
    Ok(generate)
}

/// Maximum length of a custom token string, in characters. MAS sets no limit,
/// but people type these into a registration form.
const MAX_CUSTOM_TOKEN_CHARS: usize = 255;

fn custom_token(value: &str) -> Result<String, String> {
    let length = value.chars().count();
    if length == 0 || length > MAX_CUSTOM_TOKEN_CHARS || value.chars().any(char::is_control) {
        return Err(format!(
            "`--token` must be 1 to {MAX_CUSTOM_TOKEN_CHARS} characters without control characters."
        ));
    }
    Ok(value.to_owned())
}

fn parse_edit(args: &[&str]) -> Result<Command, String> {
    let Some((target, changes)) = args.split_first() else {
        return Err("Name the token by its string or its ULID, then what to change.".to_owned());
    };

    let mut uses = None;
    let mut expiry = None;
    let values = join_date_and_time(changes);
    let mut pairs = values.iter();
    while let Some(key) = pairs.next() {
        let value = pairs
            .next()
            .ok_or_else(|| format!("`{}` needs a value after it.", echo(key)))?;
        let (slot_taken, name) = match key.to_ascii_lowercase().as_str() {
            "uses" => (uses.is_some(), "uses"),
            "expires" | "expiry" => (expiry.is_some(), "expires"),
            _ => return Err(format!("Unknown setting `{}`; use `uses` or `expires`.", echo(key))),
        };
        if slot_taken {
            return Err(format!("`{name}` is given twice; give each setting once."));
        }
        match name {
            "uses" => uses = Some(parse_uses(value)?),
            _ => expiry = Some(Expiry::parse(value)?),
        }
    }
    if uses.is_none() && expiry.is_none() {
        return Err("Say what to change: `uses N`, `uses unlimited`, `expires 7d` or `expires never`.".to_owned());
    }

    Ok(Command::Edit {
        target: TokenRef::parse(target),
        uses,
        expiry,
    })
}

fn parse_uses(text: &str) -> Result<Uses, String> {
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(Uses::Unlimited);
    }
    let problem = || {
        format!("`uses` must be a whole number from 1 to {MAX_USES} or `unlimited`, not `{}`.", echo(text))
    };
    let number = parse_digits(text).ok_or_else(problem)?;
    if number == 0 || number > MAX_USES {
        return Err(problem());
    }
    u32::try_from(number).map(Uses::Limited).map_err(|_| problem())
}

/// Joins a date and a following `HH:MM[:SS]` into one value, so that
/// `2027-01-31 12:00` can be typed with a space.
fn join_date_and_time(args: &[&str]) -> Vec<String> {
    let mut joined: Vec<String> = Vec::with_capacity(args.len());
    for arg in args {
        let follows_date = joined.last().is_some_and(|previous| looks_like_date(previous));
        if follows_date && looks_like_time(arg) {
            if let Some(previous) = joined.last_mut() {
                previous.push(' ');
                previous.push_str(arg);
            }
        } else {
            joined.push((*arg).to_owned());
        }
    }
    joined
}

fn looks_like_date(text: &str) -> bool {
    text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') && text.as_bytes().get(7) == Some(&b'-')
}

fn looks_like_time(text: &str) -> bool {
    (text.len() == 5 || text.len() == 8) && text.as_bytes().get(2) == Some(&b':')
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
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

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

    fn generate(body: &str) -> GenerateArgs {
        match command(body) {
            Command::Generate(args) => args,
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
        assert_eq!(command("!token status"), Command::Status);
    }

    #[test]
    fn base_command_is_configurable() {
        assert_eq!(parse("!token list", "regtoken"), Parsed::NotCommand);
        assert_eq!(parse("!regtoken list", "regtoken"), Parsed::Command(Command::List(ListFilter::All)));
    }

    #[test]
    fn list_filters_and_single_tokens() {
        assert_eq!(command("!token list"), Command::List(ListFilter::All));
        assert_eq!(command("!token ls"), Command::List(ListFilter::All));
        let filters = [
            ("valid", ListFilter::Valid),
            ("active", ListFilter::Valid),
            ("invalid", ListFilter::Invalid),
            ("revoked", ListFilter::Revoked),
            ("EXPIRED", ListFilter::Expired),
            ("used", ListFilter::Used),
            ("unused", ListFilter::Unused),
        ];
        for (word, filter) in filters {
            assert_eq!(command(&format!("!token list {word}")), Command::List(filter), "{word}");
        }

        let Command::Show(token) = command("!token list abc123def456") else {
            panic!("expected a token");
        };
        assert_eq!(token.text, "abc123def456");
        assert_eq!(token.ulid, None);

        // `show` always names a token, so a token called "revoked" stays reachable.
        let Command::Show(token) = command("!token show revoked") else {
            panic!("expected a token");
        };
        assert_eq!(token.text, "revoked");
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
        assert!(usage_problem("!token show").contains("Name the token"));
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
        assert_eq!(generate("!token generate"), GenerateArgs::default());
        assert_eq!(
            generate("!token generate 5 86400"),
            GenerateArgs { uses: Some(Uses::Limited(5)), expiry: Some(Expiry::After(86_400)), token: None }
        );
        assert_eq!(generate("!token generate 4294967295").uses, Some(Uses::Limited(u32::MAX)));
        assert_eq!(generate("!token generate unlimited never").uses, Some(Uses::Unlimited));
        assert_eq!(generate("!token generate unlimited never").expiry, Some(Expiry::Never));
        assert_eq!(generate("!token generate 1 1d12h").expiry, Some(Expiry::After(129_600)));
    }

    #[test]
    fn generate_takes_a_custom_token() {
        let args = generate("!token generate 5 7d --token welcome-2027");
        assert_eq!(args.token.as_deref(), Some("welcome-2027"));
        assert_eq!(args.uses, Some(Uses::Limited(5)));
        assert_eq!(args.expiry, Some(Expiry::After(604_800)));

        assert_eq!(generate("!token generate --token=Abc").token.as_deref(), Some("Abc"));
        assert!(usage_problem("!token generate --token=").contains("1 to 255"));
        assert!(usage_problem(&format!("!token generate --token {}", "x".repeat(256))).contains("1 to 255"));
        assert!(usage_problem("!token generate --token").contains("--token"));
        assert!(usage_problem("!token generate --uses 5").contains("Unknown option"));
    }

    #[test]
    fn generate_joins_date_and_time() {
        let args = generate("!token generate 2 2027-01-31 12:00");
        assert!(matches!(args.expiry, Some(Expiry::At(_))), "{args:?}");
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
        for expiry in ["0", "-60", "soon", "99999999999999999999"] {
            let problem = usage_problem(&format!("!token generate 1 {expiry}"));
            assert!(problem.contains("`expiry`"), "{expiry}: {problem}");
        }
    }

    #[test]
    fn generate_rejects_extra_values() {
        assert!(usage_problem("!token generate 1 60 extra").contains("at most two"));
    }

    #[test]
    fn edit_takes_uses_and_expiry() {
        let Command::Edit { target, uses, expiry } = command("!token edit welcome uses 10 expires 2027-01-31 12:00") else {
            panic!("expected edit");
        };
        assert_eq!(target.text, "welcome");
        assert_eq!(uses, Some(Uses::Limited(10)));
        assert!(matches!(expiry, Some(Expiry::At(_))));

        let Command::Edit { uses, expiry, .. } = command("!token edit welcome expires never uses unlimited") else {
            panic!("expected edit");
        };
        assert_eq!(uses, Some(Uses::Unlimited));
        assert_eq!(expiry, Some(Expiry::Never));
    }

    #[test]
    fn edit_needs_a_change() {
        assert!(usage_problem("!token edit").contains("Name the token"));
        assert!(usage_problem("!token edit welcome").contains("Say what to change"));
        assert!(usage_problem("!token edit welcome uses").contains("needs a value"));
        assert!(usage_problem("!token edit welcome colour blue").contains("Unknown setting"));
        assert!(usage_problem("!token edit welcome uses 0").contains("`uses`"));
        assert!(usage_problem("!token edit welcome uses 5 uses 6").contains("given twice"));
        assert!(usage_problem("!token edit welcome expires 1d expiry never").contains("given twice"));
    }

    #[test]
    fn unknown_subcommand_is_named() {
        assert!(usage_problem("!token frobnicate").contains("`frobnicate`"));
    }

    #[test]
    fn long_arguments_are_cut_in_messages() {
        let problem = usage_problem(&format!("!token generate {}", "9".repeat(30_000)));
        assert!(problem.len() < 300, "{} bytes", problem.len());
    }

    #[test]
    fn aliases_map_to_commands() {
        assert!(matches!(command("!token new"), Command::Generate(_)));
        assert!(matches!(command("!token create 2"), Command::Generate(_)));
        assert!(matches!(command("!token revoke x"), Command::Revoke(_)));
        assert!(matches!(command("!token restore x"), Command::Unrevoke(_)));
        assert!(matches!(command("!token show x"), Command::Show(_)));
        assert!(matches!(command("!token info x"), Command::Show(_)));
        for subcommand in Subcommand::ALL {
            for alias in subcommand.aliases() {
                assert_eq!(Subcommand::from_word(alias), Some(subcommand), "{alias}");
            }
        }
    }

    #[test]
    fn reply_fallback_is_skipped() {
        let body = "> <@bob:example.org> what tokens exist?\n\n!token list";
        assert_eq!(command(body), Command::List(ListFilter::All));
    }
}
