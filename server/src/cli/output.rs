//! Printing for people or scripts, and the progress bar of long operations.

use serde_json::Value;
use std::io::{IsTerminal, Write};

/// Prints for people or scripts.
pub(super) struct Out {
    pub(super) json: bool,
}

impl Out {
    pub(super) fn value(&self, v: &Value, text: impl FnOnce(&Value) -> String) {
        let mut o = std::io::stdout();
        let s = if self.json { serde_json::to_string_pretty(v).unwrap_or_default() } else { text(v) };
        let _ = writeln!(o, "{}", s.trim_end());
    }
}

pub(super) fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A progress bar on standard error: redrawn in place on a terminal, a line per change otherwise, nothing
/// with `--output json`.
pub(super) struct Progress {
    quiet: bool,
    tty: bool,
    label: String,
    last: std::sync::Mutex<String>,
}

impl Progress {
    pub(super) fn new(quiet: bool, label: &str) -> Self {
        Self { quiet, tty: std::io::stderr().is_terminal(), label: label.to_owned(), last: std::sync::Mutex::default() }
    }

    pub(super) fn draw(&self, percent: u8, what: &str) {
        if self.quiet {
            return;
        }
        let filled = usize::from(percent.min(100)) * 30 / 100;
        let line = format!("{} [{}{}] {percent:>3}% {what}", self.label, "#".repeat(filled), "-".repeat(30 - filled));
        let Ok(mut last) = self.last.lock() else { return };
        if *last == line {
            return;
        }
        let mut e = std::io::stderr();
        if self.tty {
            let _ = write!(e, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(e, "{line}");
        }
        let _ = e.flush();
        *last = line;
    }

    pub(super) fn finish(&self) {
        if self.tty && !self.quiet {
            let _ = writeln!(std::io::stderr());
        }
    }
}
