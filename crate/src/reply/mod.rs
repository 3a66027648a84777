//! Replies for the room, rendered twice from one description: as plain text
//! with markdown code spans for the event's `body`, and as HTML for its
//! `formatted_body`. Every piece of text is escaped for HTML here and only
//! here, so text from MAS or from users can never become markup.

mod help;
pub mod list;
pub mod token;

pub use help::{help, usage};
pub use list::token_list;
pub use token::{token_details, Status};

pub use crate::protocol::Reply;

/// Largest size of a reply's `body` plus `formatted_body`, counted as JSON
/// string bytes. Matrix events are limited to 65,536 bytes including the
/// envelope and signatures, so this leaves room for them.
pub const MAX_REPLY_BYTES: usize = 56_000;

/// A run of text inside a paragraph or list item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    Code(String),
    Strong(String),
}

pub fn text(value: impl Into<String>) -> Inline {
    Inline::Text(value.into())
}

pub fn code(value: impl Into<String>) -> Inline {
    Inline::Code(value.into())
}

pub fn strong(value: impl Into<String>) -> Inline {
    Inline::Strong(value.into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Paragraph(Vec<Inline>),
    List(Vec<Vec<Inline>>),
}

/// A reply being built: paragraphs and bullet lists of inline runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doc {
    blocks: Vec<Block>,
}

impl Doc {
    pub fn new() -> Doc {
        Doc::default()
    }

    pub fn paragraph(&mut self, inlines: Vec<Inline>) -> &mut Doc {
        self.blocks.push(Block::Paragraph(inlines));
        self
    }

    pub fn list(&mut self, items: Vec<Vec<Inline>>) -> &mut Doc {
        self.blocks.push(Block::List(items));
        self
    }

    pub fn render(&self, error: bool) -> Reply {
        let mut body = Vec::with_capacity(self.blocks.len());
        let mut html = String::new();

        for block in &self.blocks {
            match block {
                Block::Paragraph(inlines) => {
                    body.push(render_text(inlines));
                    html.push_str("<p>");
                    html.push_str(&render_html(inlines));
                    html.push_str("</p>");
                }
                Block::List(items) => {
                    let lines: Vec<String> =
                        items.iter().map(|item| format!("- {}", render_text(item))).collect();
                    body.push(lines.join("\n"));
                    html.push_str("<ul>");
                    for item in items {
                        html.push_str("<li>");
                        html.push_str(&render_html(item));
                        html.push_str("</li>");
                    }
                    html.push_str("</ul>");
                }
            }
        }

        Reply {
            body: body.join("\n"),
            html,
            error,
        }
    }
}

/// Builds a one-paragraph reply reporting a failure. Backtick-quoted parts of
/// `message` become code spans.
pub fn error(message: &str) -> Reply {
    Doc::new().paragraph(inline_code_spans(message)).render(true)
}

/// Splits a message written with single-backtick code spans into inline runs.
pub fn inline_code_spans(message: &str) -> Vec<Inline> {
    message
        .split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(index, part)| if index % 2 == 1 { code(part) } else { text(part) })
        .collect()
}

/// Maximum length of user input that a reply repeats, in characters.
const MAX_ECHO_CHARS: usize = 64;

/// User input as a reply repeats it: cut to [`MAX_ECHO_CHARS`] with an
/// ellipsis, so a huge argument cannot make a reply too large for one event.
pub fn echo(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX_ECHO_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// Returns the size a reply adds to an event: its two strings as JSON.
pub fn encoded_size(reply: &Reply) -> usize {
    json_string_len(&reply.body) + json_string_len(&reply.html)
}

fn json_string_len(value: &str) -> usize {
    serde_json::to_string(value).map_or(value.len() * 6, |encoded| encoded.len())
}

fn render_text(inlines: &[Inline]) -> String {
    let mut out = String::new();
    for inline in inlines {
        match inline {
            Inline::Text(value) | Inline::Strong(value) => out.push_str(value),
            Inline::Code(value) => out.push_str(&markdown_code_span(value)),
        }
    }
    out
}

fn render_html(inlines: &[Inline]) -> String {
    let mut out = String::new();
    for inline in inlines {
        match inline {
            Inline::Text(value) => out.push_str(&html_escape::encode_text(value)),
            Inline::Strong(value) => {
                out.push_str("<strong>");
                out.push_str(&html_escape::encode_text(value));
                out.push_str("</strong>");
            }
            Inline::Code(value) => {
                out.push_str("<code>");
                out.push_str(&html_escape::encode_text(value));
                out.push_str("</code>");
            }
        }
    }
    out
}

/// Builds a CommonMark code span for `value`: the fence is one backtick longer than
/// the longest run inside, and padded with spaces when the value starts or
/// ends with a backtick, so the value shows literally.
fn markdown_code_span(value: &str) -> String {
    let longest_run = value
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let pad = if value.starts_with('`') || value.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{value}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn html_is_escaped_everywhere() {
        let reply = Doc::new()
            .paragraph(vec![text("<b>"), code("<script>alert(1)</script>"), strong("&")])
            .list(vec![vec![text("\"quoted\" <i>")]])
            .render(false);
        assert!(!reply.html.contains("<script>"));
        assert!(!reply.html.contains("<b>"));
        assert!(!reply.html.contains("<i>"));
        assert!(reply.html.contains("&lt;script&gt;"));
        assert!(reply.html.contains("<strong>&amp;</strong>"));
    }

    #[test]
    fn body_shows_values_literally() {
        let reply = Doc::new()
            .paragraph(vec![text("token "), code("**bold** @room")])
            .render(false);
        assert_eq!(reply.body, "token `**bold** @room`");
    }

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(markdown_code_span("plain"), "`plain`");
        assert_eq!(markdown_code_span("a`b"), "``a`b``");
        assert_eq!(markdown_code_span("`x``"), "``` `x`` ```");
    }

    #[test]
    fn error_message_spans_become_code() {
        let reply = error("Check `client_id` and `client_secret`.");
        assert!(reply.error);
        assert_eq!(reply.html, "<p>Check <code>client_id</code> and <code>client_secret</code>.</p>");
        assert_eq!(reply.body, "Check `client_id` and `client_secret`.");
    }

    #[test]
    fn lists_render_as_bullets() {
        let reply = Doc::new()
            .paragraph(vec![strong("Title")])
            .list(vec![vec![text("one")], vec![text("two")]])
            .render(false);
        assert_eq!(reply.body, "Title\n- one\n- two");
        assert_eq!(reply.html, "<p><strong>Title</strong></p><ul><li>one</li><li>two</li></ul>");
    }

    #[test]
    fn echo_cuts_long_input() {
        assert_eq!(echo("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(echo(&long).chars().count(), MAX_ECHO_CHARS + 1);
        assert!(echo(&long).ends_with('…'));
    }

    #[test]
    fn encoded_size_counts_json_escapes() {
        let reply = Reply { body: "\"".to_owned(), html: "\n".to_owned(), error: false };
        assert_eq!(encoded_size(&reply), 8);
    }
}
