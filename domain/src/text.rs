//! Names in messages: estate names are shown as written, in quotes, never as a Rust debug escape.

use std::fmt;

/// A name in double quotes, exactly as written except for control characters, which are shown as
/// `\u{…}` so a message stays on one line. Letters with combining marks (`i̇`), other scripts and
/// emoji are kept; `{:?}` would escape some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a>(pub &'a str);

/// `name` in quotes, for a message a person reads.
pub fn quoted(name: &str) -> Quoted<'_> {
    Quoted(name)
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            } else {
                write!(f, "{c}")?;
            }
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn a_name_is_quoted_as_written_and_only_control_characters_are_escaped() {
        assert_eq!(quoted("h3-i\u{307}").to_string(), "\"h3-i\u{307}\"");
        assert_ne!(quoted("h3-i\u{307}").to_string(), format!("{:?}", "h3-i\u{307}"), "debug escapes the mark");
        assert_eq!(quoted("web \"01\" ü 🚀").to_string(), "\"web \"01\" ü 🚀\"");
        assert_eq!(quoted("a\nb\u{7}").to_string(), "\"a\\u{a}b\\u{7}\"");
    }
}
