//! Text from an archive shown on a terminal: records hold whatever a proposer, a scorer or an
//! import put there, and a terminal interprets control characters (escape sequences can move the
//! cursor, rewrite the title, hide what follows). Every string shown on a terminal goes through
//! [`for_terminal`].

use std::borrow::Cow;

/// Characters a terminal would interpret or that change how the text around them reads:
/// controls (C0, DEL, C1) and the invisible formatting ones (bidirectional overrides and
/// isolates, zero-width joiners and spaces, the byte-order mark).
fn interpreted(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// `text` with every interpreted character written as its escape (`\n`, `\u{1b}`); everything
/// else, any script included, as it is.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(interpreted) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if interpreted(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `text` holds nothing a terminal would interpret but line breaks.
pub fn is_terminal_safe(text: &str) -> bool {
    !text.chars().any(|c| c != '\n' && interpreted(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_formatting_are_escaped_and_the_rest_kept() {
        assert_eq!(for_terminal("2+3 × Ω 漢字"), "2+3 × Ω 漢字");
        assert_eq!(for_terminal("a\u{1b}[2Jb\nc\u{202e}d"), "a\\u{1b}[2Jb\\nc\\u{202e}d");
        assert!(is_terminal_safe(&for_terminal("\u{7}\u{9b}\u{200d}\r\t")));
        assert!(matches!(for_terminal("plain"), Cow::Borrowed(_)));
    }
}
