//! Config errors with locations: a [`Diagnostic`] is a message, a byte [`Span`] and
//! optional help and notes; [`SourceFile::render`] prints it as
//!
//! ```text
//! error: unknown key `improts`
//!   --> vss.yaml:7:5
//!    |
//!  7 |     improts: [common]
//!    |     ^^^^^^^ did you mean `imports`?
//! ```

use std::fmt::Write as _;

use crate::span::Span;

/// One config error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where, when known.
    pub span: Option<Span>,
    /// A short hint printed after the caret (for example "did you mean `imports`?").
    pub label: Option<String>,
    /// Further locations that explain the error (for example each edge of a cycle).
    pub notes: Vec<Note>,
}

/// A secondary location of a [`Diagnostic`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// What this location shows.
    pub message: String,
    /// Where.
    pub span: Span,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn at(span: Span, message: impl Into<String>) -> Self {
        Self { message: message.into(), span: Some(span), label: None, notes: Vec::new() }
    }

    /// An error without a location (for example an unreadable file).
    pub fn global(message: impl Into<String>) -> Self {
        Self { message: message.into(), span: None, label: None, notes: Vec::new() }
    }

    /// Adds a hint printed after the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a secondary location.
    pub fn with_note(mut self, span: Span, message: impl Into<String>) -> Self {
        self.notes.push(Note { message: message.into(), span });
        self
    }
}

/// A 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub col: usize,
}

/// A config file's name (as given on the command line) and text. `Debug` leaves the text
/// out: a config may hold credentials written literally.
#[derive(Clone)]
pub struct SourceFile {
    /// The path as the user wrote it.
    pub name: String,
    /// The file's text.
    pub text: String,
}

impl std::fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceFile").field("name", &self.name).field("bytes", &self.text.len()).finish()
    }
}

impl SourceFile {
    /// The line and column of a byte offset.
    pub fn location(&self, offset: usize) -> Location {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location { line: before.matches('\n').count() + 1, col: before[line_start..].chars().count() + 1 }
    }

    /// `name:line:col` of a byte offset.
    pub fn position(&self, offset: usize) -> String {
        let loc = self.location(offset);
        format!("{}:{}:{}", self.name, loc.line, loc.col)
    }

    /// Renders one diagnostic, rustc style, with the source line and a caret.
    pub fn render(&self, diagnostic: &Diagnostic) -> String {
        let mut out = format!("error: {}\n", diagnostic.message);
        match diagnostic.span {
            Some(span) => self.snippet(&mut out, span, diagnostic.label.as_deref()),
            None => {
                let _ = writeln!(out, "  --> {}", self.name);
                if let Some(label) = &diagnostic.label {
                    let _ = writeln!(out, "   = help: {label}");
                }
            }
        }
        for note in &diagnostic.notes {
            let _ = writeln!(out, "note: {}", note.message);
            self.snippet(&mut out, note.span, None);
        }
        out
    }

    /// Renders every diagnostic, followed by a count.
    pub fn render_all(&self, diagnostics: &[Diagnostic]) -> String {
        let mut out = String::new();
        for d in diagnostics {
            out.push_str(&self.render(d));
            out.push('\n');
        }
        let n = diagnostics.len();
        let _ = writeln!(out, "{n} error{} in {}", if n == 1 { "" } else { "s" }, self.name);
        out
    }

    fn snippet(&self, out: &mut String, span: Span, label: Option<&str>) {
        let loc = self.location(span.start);
        let line_text = self.text.lines().nth(loc.line - 1).unwrap_or("");
        let gutter = loc.line.to_string().len();
        let pad = " ".repeat(gutter);
        let start = floor_char_boundary(&self.text, span.start.min(self.text.len()));
        let end = floor_char_boundary(&self.text, span.end.min(self.text.len()));
        let rest_of_line = self.text[start..].split('\n').next().unwrap_or("");
        let width = self.text[start..end.max(start)].split('\n').next().unwrap_or("").chars().count();
        let width = width.clamp(1, rest_of_line.chars().count().max(1));
        let _ = writeln!(out, "{pad}--> {}:{}:{}", self.name, loc.line, loc.col);
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{} | {}", loc.line, line_text.trim_end());
        let indent: String = line_text.chars().take(loc.col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        let _ = write!(out, "{pad} | {indent}{}", "^".repeat(width));
        match label {
            Some(label) => {
                let _ = writeln!(out, " {label}");
            }
            None => out.push('\n'),
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The known name closest to `unknown`, if any is close enough to be a likely typo.
pub fn suggest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_column_and_caret() {
        let file = SourceFile { name: "vss.yaml".into(), text: "targets:\n  Prod:\n    improts: [a]\n".into() };
        let d = Diagnostic::at(Span::new(21, 28), "unknown key `improts`").with_label("did you mean `imports`?");
        assert_eq!(
            file.render(&d),
            "error: unknown key `improts`\n --> vss.yaml:3:5\n  |\n3 |     improts: [a]\n  |     ^^^^^^^ did you mean `imports`?\n"
        );
    }

    #[test]
    fn locations_count_characters() {
        let file = SourceFile { name: "f".into(), text: "é: x\n".into() };
        assert_eq!(file.location(4), Location { line: 1, col: 4 });
        assert_eq!(file.location(100), Location { line: 2, col: 1 });
    }

    #[test]
    fn suggestions_only_for_close_names() {
        assert_eq!(suggest("improts", ["imports", "inherits"]), Some("imports"));
        assert_eq!(suggest("zzz", ["imports", "inherits"]), None);
    }
}
