//! Help and usage replies.

use crate::command::{Subcommand, UsageError};
use crate::protocol::Reply;
use crate::reply::{code, inline_code_spans, strong, text, Doc, Inline};

fn usage_line(base_command: &str, subcommand: Subcommand) -> String {
    let (name, arguments) = subcommand.synopsis();
    if arguments.is_empty() {
        format!("!{base_command} {name}")
    } else {
        format!("!{base_command} {name} {arguments}")
    }
}

fn subcommand_item(base_command: &str, subcommand: Subcommand) -> Vec<Inline> {
    let mut item = vec![
        code(usage_line(base_command, subcommand)),
        text(format!(": {}", subcommand.summary())),
    ];
    let (name, _) = subcommand.synopsis();
    let example = subcommand.example();
    if !example.is_empty() {
        item.push(text(" Example: "));
        item.push(code(format!("!{base_command} {name} {example}")));
        item.push(text("."));
    }
    let aliases = subcommand.aliases();
    if !aliases.is_empty() {
        item.push(text(format!(" Also: {}.", aliases.join(", "))));
    }
    item
}

/// Lists every subcommand with its arguments.
pub fn help(base_command: &str) -> Reply {
    let items = Subcommand::ALL
        .iter()
        .map(|subcommand| subcommand_item(base_command, *subcommand))
        .collect();
    Doc::new()
        .paragraph(vec![strong("Manage MAS user registration tokens")])
        .list(items)
        .paragraph(vec![
            text("Uses are a whole number or "),
            code("unlimited"),
            text(". An expiry is seconds, a duration ("),
            code("30m"),
            text(", "),
            code("12h"),
            text(", "),
            code("7d"),
            text(", "),
            code("2w"),
            text(", "),
            code("1d12h"),
            text("), a date or date-time in UTC unless an offset follows ("),
            code("2027-01-31"),
            text(", "),
            code("2027-01-31T12:00"),
            text(", "),
            code("2027-01-31T12:00+02:00"),
            text("), or "),
            code("never"),
            text("."),
        ])
        .render(false)
}

/// Explains what was wrong with a command and shows the right form.
pub fn usage(base_command: &str, error: &UsageError) -> Reply {
    let mut problem = inline_code_spans(&error.problem);
    problem.push(text(" "));
    match error.subcommand {
        Some(subcommand) => {
            problem.push(text("Usage: "));
            problem.push(code(usage_line(base_command, subcommand)));
        }
        None => {
            problem.push(text("Usage: see "));
            problem.push(code(format!("!{base_command} help")));
        }
    }
    Doc::new().paragraph(problem).render(true)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn help_names_every_subcommand_with_the_base_command() {
        let reply = help("regtoken");
        for name in ["list", "show", "generate", "edit", "delete", "unrevoke", "status", "help"] {
            assert!(reply.body.contains(&format!("!regtoken {name}")), "{name}");
        }
        assert!(!reply.error);
    }

    #[test]
    fn usage_shows_the_subcommand_synopsis() {
        let error = UsageError {
            subcommand: Some(Subcommand::Generate),
            problem: "`uses` must be a whole number from 1 to 4294967295, not `two`.".to_owned(),
        };
        let reply = usage("token", &error);
        assert!(reply.error);
        assert!(reply.body.contains("Usage: `!token generate [uses|unlimited] [expiry] [--token STRING]`"));
    }
}
