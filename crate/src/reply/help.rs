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
    vec![
        code(usage_line(base_command, subcommand)),
        text(format!(": {}", subcommand.summary())),
    ]
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
            text("Example: "),
            code(format!("!{base_command} generate 5 604800")),
            text(" creates a token for 5 registrations that expires in 7 days."),
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
    use super::*;

    #[test]
    fn help_names_every_subcommand_with_the_base_command() {
        let reply = help("regtoken");
        for name in ["list", "generate", "delete", "unrevoke", "help"] {
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
        assert!(reply.body.contains("Usage: `!token generate [uses] [expiry-seconds]`"));
    }
}
