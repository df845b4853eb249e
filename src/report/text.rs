//! Untrusted text made safe for each place a report goes. Every string in a report may come
//! from another team's Scenario, or from a report file anyone could have edited: none may add
//! markup, links, images or terminal escapes of its own. PURE.
//!
//! - `markdown` (where a line starts) and `markdown_inline`: nothing in the text opens HTML, a
//!   link, an image, emphasis, code, a table cell or a block (list, heading, quote); newlines
//!   become spaces.
//! - `markdown_link`: an `http(s)` address as a link target, or `None` (shown as text then).
//! - `xml`: XML 1.0 text and attribute values (HTML too): markup escaped, characters XML 1.0
//!   forbids dropped.
//! - `terminal`: no control characters (ANSI escapes, carriage returns, bidirectional
//!   overrides), so a name cannot rewrite what a terminal shows.

/// Whether a character could make a terminal, an editor or a renderer show something other
/// than the text: C0 and C1 controls, DEL, and the bidirectional overrides and isolates.
fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// One line of text for a terminal: controls (escape sequences included) become spaces.
pub fn terminal(text: &str) -> String {
    text.chars().map(|c| if is_control(c) { ' ' } else { c }).collect()
}

/// Lines of text for a terminal: as `terminal`, but keeping the line breaks.
pub fn terminal_lines(text: &str) -> String {
    text.split('\n').map(terminal).collect::<Vec<_>>().join("\n")
}

/// Markdown (CommonMark and GitHub's dialect) that shows exactly `text` on one line, where a
/// line starts (a list item, a heading): a leading `#`, `-`, `1.`… is escaped too.
pub fn markdown(text: &str) -> String {
    escape_markdown(text, true)
}

/// Markdown that shows exactly `text` inside a line (a table cell, after other text).
pub fn markdown_inline(text: &str) -> String {
    escape_markdown(text, false)
}

fn escape_markdown(text: &str, line_start: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let flat = terminal(text);
    let trimmed = flat.trim_start();
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    for (i, c) in trimmed.chars().enumerate() {
        let block_start = line_start && i == 0 && matches!(c, '#' | '-' | '+' | '=' | '>');
        let ordered = line_start && digits > 0 && i == digits && matches!(c, '.' | ')');
        if block_start || ordered || matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '&' | '|' | '~' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `address` as a Markdown link target when it is an `http` or `https` URL; `None` otherwise
/// (a `javascript:` or `data:` address must never become a link).
pub fn markdown_link(address: &str) -> Option<String> {
    let url = url::Url::parse(address.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    // The URL serializer percent-encodes spaces, quotes and angle brackets; parentheses would
    // still end the link early.
    Some(url.as_str().replace('(', "%28").replace(')', "%29"))
}

/// Escapes text for XML (and HTML) attributes and content, dropping what XML 1.0 forbids.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\r' | '\t' => out.push(c),
            // XML 1.0 allows no other C0 control, nor U+FFFE and U+FFFF; the bidirectional
            // overrides would make a page show other than what it holds.
            '\u{FFFE}' | '\u{FFFF}' => out.push(' '),
            c if is_control(c) => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_opens_no_markup_of_its_own() {
        let cases = [
            ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)>"),
            ("[click](javascript:alert(1))", "\\[click\\](javascript:alert(1))"),
            (
                "![x](https://evil.example/p.png)",
                "\\!\\[x\\](https://evil.example/p.png)",
            ),
            ("a|b", "a\\|b"),
            ("line\nbreak", "line break"),
            ("# not a heading", "\\# not a heading"),
            ("1. not a list", "1\\. not a list"),
            ("- not a list", "\\- not a list"),
            (
                "*bold* _it_ `code` ~~s~~ &amp;",
                "\\*bold\\* \\_it\\_ \\`code\\` \\~\\~s\\~\\~ \\&amp;",
            ),
            ("checkout-api keeps serving.", "checkout-api keeps serving."),
            ("\u{1b}[31mred\u{202E}", "\\[31mred "),
        ];
        for (text, expected) in cases {
            assert_eq!(markdown(text), expected, "{text:?}");
        }
        assert_eq!(markdown_inline("12.3s"), "12.3s");
        assert_eq!(markdown_inline("+1.0s"), "+1.0s");
    }

    #[test]
    fn only_http_addresses_become_links() {
        assert_eq!(
            markdown_link("https://wiki.example/run book (v2)").as_deref(),
            Some("https://wiki.example/run%20book%20%28v2%29")
        );
        assert_eq!(markdown_link("javascript:alert(1)"), None);
        assert_eq!(markdown_link("data:text/html,<script>"), None);
        assert_eq!(markdown_link("not a url"), None);
    }

    #[test]
    fn xml_escapes_markup_and_drops_what_xml_forbids() {
        assert_eq!(xml("a<b & \"c\"\u{1}\u{FFFE}\u{FFFF}"), "a&lt;b &amp; &quot;c&quot;   ");
    }

    #[test]
    fn terminals_get_no_escape_sequences() {
        assert_eq!(terminal("ok\u{1b}]0;pwned\u{7}\r"), "ok ]0;pwned  ");
        assert_eq!(terminal_lines("a\u{1b}\nb"), "a \nb");
    }
}
