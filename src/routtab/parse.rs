//! The saprouttab grammar (nom): `#` comment lines, blank lines, and
//! `<action>[v,n] <src> <dst> <service> <password>` with spaces or tabs.

use std::path::{Path, PathBuf};

use nom::bytes::complete::{take_till, take_till1, take_while};
use nom::character::complete::char;
use nom::sequence::delimited;
use nom::IResult;

use super::field::{self, HostCache};
use super::{Action, Entry, HopLimits, Resolver, RoutTab, ServicePattern, SncName, Source};

/// Longest password a line may carry, in bytes (longer route passwords never match).
pub const MAX_PASSWORD_LEN: usize = 255;

/// Longest field text quoted back in an error message, in characters.
const MAX_QUOTED: usize = 64;

/// A table that cannot be loaded, with the place that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct TableError {
    /// The table's path as given.
    pub file: PathBuf,
    /// 1-based line (0 when the file itself could not be read).
    pub line: usize,
    /// 1-based column of the offending field.
    pub column: usize,
    /// What is wrong, naming the field ("destination: '10.0.0.0/33': prefix longer than 32").
    pub message: String,
}

/// Parses a whole table. `file` only labels errors. The first bad line fails the whole
/// table (a reload must never apply half a file).
pub fn parse_table(
    text: &str,
    file: &Path,
    resolver: &dyn Resolver,
) -> Result<RoutTab, TableError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut cache = HostCache::new();
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let ctx = LineCtx {
            file,
            line: index + 1,
            text: line,
        };
        if let Some(entry) = ctx.parse(resolver, &mut cache, &mut warnings)? {
            entries.push(entry);
        }
    }
    Ok(RoutTab { entries, warnings })
}

/// One field of a line: its text (quotes removed) and where it starts.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    text: &'a str,
    /// Byte offset of the field (its opening quote, if quoted) in the line.
    offset: usize,
}

/// One line being parsed, for error positions.
struct LineCtx<'a> {
    file: &'a Path,
    line: usize,
    text: &'a str,
}

fn blanks(input: &str) -> IResult<&str, &str> {
    take_while(|c| c == ' ' || c == '\t')(input)
}

fn quoted(input: &str) -> IResult<&str, &str> {
    delimited(char('"'), take_till(|c| c == '"'), char('"'))(input)
}

fn bare(input: &str) -> IResult<&str, &str> {
    take_till1(|c| c == ' ' || c == '\t')(input)
}

/// Shortens `text` for an error message.
fn shown(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

impl LineCtx<'_> {
    /// 1-based character column of byte `offset`.
    fn column(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(offset, |s| s.chars().count())
            + 1
    }

    fn error(&self, offset: usize, message: String) -> TableError {
        TableError {
            file: self.file.to_path_buf(),
            line: self.line,
            column: self.column(offset),
            message,
        }
    }

    /// An error in `field` that quotes the field's text.
    fn field_error(&self, name: &str, field: &Field<'_>, reason: &str) -> TableError {
        let message = format!("{name}: '{}': {reason}", shown(field.text));
        self.error(field.offset, message)
    }

    /// Splits the line into at most `max` fields; a further token starting with `#` starts a
    /// comment. Any other further token gives the error returned beside the fields (reported
    /// after the fields themselves are checked, so a misplaced comment is named as such).
    fn fields(&self) -> Result<(Vec<Field<'_>>, Option<TableError>), TableError> {
        let mut fields: Vec<Field<'_>> = Vec::new();
        let mut rest = self.text;
        let mut max = 5;
        loop {
            let skipped: IResult<&str, &str> = blanks(rest);
            rest = skipped.map_or(rest, |(r, _)| r);
            let offset = self.text.len() - rest.len();
            if rest.is_empty() || (fields.len() >= max && rest.starts_with('#')) {
                return Ok((fields, None));
            }
            if fields.len() >= max {
                let message = match fields.first() {
                    Some(f) if f.text.eq_ignore_ascii_case("KT") => {
                        "unexpected 5th field: KT lines are '<snc-name> <host> <service>' \
                         without a password (inline comments must start with '#')"
                    }
                    _ => {
                        "unexpected field after the password \
                         (inline comments must start with '#')"
                    }
                };
                return Ok((fields, Some(self.error(offset, message.to_string()))));
            }
            let field = if rest.starts_with('"') {
                let parsed: IResult<&str, &str> = quoted(rest);
                let (after, text) = parsed.map_err(|_| {
                    self.error(offset, "unterminated quote (no closing '\"')".to_string())
                })?;
                if !after.is_empty() && !after.starts_with([' ', '\t']) {
                    let at = self.text.len() - after.len();
                    return Err(self.error(at, "text directly after a closing quote".to_string()));
                }
                if text.is_empty() {
                    return Err(self.error(offset, "empty quoted field".to_string()));
                }
                rest = after;
                Field { text, offset }
            } else {
                let parsed: IResult<&str, &str> = bare(rest);
                let (after, text) = parsed.map_err(|_| self.error(offset, "bad field".into()))?;
                rest = after;
                Field { text, offset }
            };
            if fields.is_empty() && field.text.eq_ignore_ascii_case("KT") {
                max = 4;
            }
            fields.push(field);
        }
    }

    /// Records a warning when a host name resolved to nothing (the line then matches no
    /// address).
    fn warn_unresolved(
        &self,
        pattern: &super::HostPattern,
        name: &str,
        field: &Field<'_>,
        cache: &HostCache,
        warnings: &mut Vec<TableError>,
    ) {
        if !matches!(pattern, super::HostPattern::Addresses(a) if a.is_empty()) {
            return;
        }
        let why = match cache.get(&field.text.to_ascii_lowercase()) {
            Some(Err(e)) => format!("cannot resolve host name: {e}"),
            _ => "host name resolves to no address".to_string(),
        };
        let reason = format!("{why}; the line matches no address until the table is reloaded");
        warnings.push(self.field_error(name, field, &reason));
    }

    /// Parses the line: `None` for blank and comment lines.
    fn parse(
        &self,
        resolver: &dyn Resolver,
        cache: &mut HostCache,
        warnings: &mut Vec<TableError>,
    ) -> Result<Option<Entry>, TableError> {
        if let Some((at, c)) = self
            .text
            .char_indices()
            .find(|&(_, c)| c.is_control() && c != '\t')
        {
            let message = format!("control character U+{:04X} in the line", u32::from(c));
            return Err(self.error(at, message));
        }
        let trimmed = self.text.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(None);
        }
        let (fields, extra) = self.fields()?;
        let Some(first) = fields.first() else {
            return Ok(None);
        };
        let (action, hops) =
            field::action(first.text).map_err(|e| self.field_error("action", first, &e))?;
        let snc = matches!(
            action,
            Action::SncTarget | Action::SncPermit | Action::SncSecure | Action::SncDeny
        );
        let (src_name, dst_name) = match action {
            Action::SncTarget => ("SNC name", "host"),
            _ if snc => ("source SNC name", "destination"),
            _ => ("source", "destination"),
        };
        let Some(src) = fields.get(1) else {
            let message = format!("{src_name}: missing (write '*' for any)");
            return Err(self.error(self.text.len(), message));
        };
        let source = if snc {
            Source::Snc(SncName::new(src.text))
        } else {
            let pattern = field::host(src.text, resolver, cache)
                .map_err(|e| self.field_error(src_name, src, &e))?;
            self.warn_unresolved(&pattern, src_name, src, cache, warnings);
            Source::Host(pattern)
        };
        let destination = match fields.get(2) {
            None => super::HostPattern::Any,
            Some(f) => field::host(f.text, resolver, cache)
                .map_err(|mut e| {
                    if snc && f.text.contains('=') {
                        e.push_str(" -- an SNC name with blanks must be in double quotes");
                    }
                    self.field_error(dst_name, f, &e)
                })
                .inspect(|p| self.warn_unresolved(p, dst_name, f, cache, warnings))?,
        };
        let service = match fields.get(3) {
            None => ServicePattern::Any,
            Some(f) => {
                field::service(f.text, resolver).map_err(|e| self.field_error("service", f, &e))?
            }
        };
        let password = match fields.get(4) {
            Some(f) if f.text.len() > MAX_PASSWORD_LEN => {
                let message = format!("password: longer than {MAX_PASSWORD_LEN} bytes");
                return Err(self.error(f.offset, message));
            }
            Some(f) if f.text != "*" => Some(f.text.to_string()),
            _ => None,
        };
        if let Some(extra) = extra {
            return Err(extra);
        }
        Ok(Some(Entry {
            line: self.line,
            action,
            hops: if matches!(action, Action::Permit | Action::Secure) {
                hops
            } else {
                HopLimits::default()
            },
            source,
            destination,
            service,
            password,
        }))
    }
}
