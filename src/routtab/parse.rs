//! The saprouttab grammar (nom): `#` comment lines, blank lines, and
//! `<action>[v,n] <src> <dst> <service> <password>` with spaces or tabs.

use std::path::{Path, PathBuf};

use super::{Resolver, RoutTab};

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
    todo!("policy helper")
}
