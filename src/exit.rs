//! Exit codes a script can tell apart (docs/CLI.md, "Exit codes").
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (also: a reader of the output went away, a stop on request) |
//! | 1 | any other failure (a file that cannot be read or written, a failed run) |
//! | 2 | a usage error: a bad flag or value, a configuration that is refused |
//! | 3 | the archive is busy or its daemon unreachable: held by a process that does not answer, a daemon that stopped answering or timed out |
//! | 4 | the archive is damaged: unreadable records or indexes, truncated, of another schema, not an archive |

use std::process::ExitCode;

use store::StoreError;

/// What kind of failure an error is, where the code that found it knows better than its type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Usage,
    Unavailable,
    Damaged,
}

impl Kind {
    pub fn code(self) -> u8 {
        match self {
            Kind::Usage => 2,
            Kind::Unavailable => 3,
            Kind::Damaged => 4,
        }
    }
}

/// An error marked with its [`Kind`]; shown exactly as the error it wraps.
#[derive(Debug)]
pub struct Marked {
    pub kind: Kind,
    pub error: anyhow::Error,
}

impl std::fmt::Display for Marked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Marked {}

/// Marks an error with its kind.
pub fn mark(kind: Kind, error: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Marked { kind, error })
}

/// Marks the error of a result with its kind.
pub trait MarkExt<T> {
    fn marked(self, kind: Kind) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> MarkExt<T> for Result<T, E> {
    fn marked(self, kind: Kind) -> anyhow::Result<T> {
        self.map_err(|e| mark(kind, e.into()))
    }
}

/// The exit code of a failed command.
pub fn code_of(error: &anyhow::Error) -> ExitCode {
    ExitCode::from(kind_of(error).map_or(1, Kind::code))
}

/// The kind of a failure: a mark anywhere in its chain, else what the archive's error says.
pub fn kind_of(error: &anyhow::Error) -> Option<Kind> {
    for cause in error.chain() {
        if let Some(m) = cause.downcast_ref::<Marked>() {
            return Some(m.kind);
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return match s {
                StoreError::Locked(_) => Some(Kind::Unavailable),
                StoreError::NotArchive(_)
                | StoreError::Schema { .. }
                | StoreError::Corrupt { .. }
                | StoreError::CorruptIndex { .. }
                | StoreError::Truncated { .. } => Some(Kind::Damaged),
                StoreError::Sled { cause: sled::Error::Corruption { .. }, .. } => Some(Kind::Damaged),
                StoreError::BadQuery(_) | StoreError::InvalidRecord { .. } | StoreError::Import { .. } => {
                    Some(Kind::Usage)
                }
                _ => None,
            };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_archive_errors_choose_the_code() {
        let marked = mark(Kind::Unavailable, anyhow::anyhow!("no answer")).context("listing");
        assert_eq!(kind_of(&marked), Some(Kind::Unavailable));
        assert_eq!(format!("{marked:#}"), "listing: no answer");
        let damaged = anyhow::Error::new(StoreError::Truncated { path: "a".into(), held: 1, written: 2 });
        assert_eq!(kind_of(&damaged.context("opening")), Some(Kind::Damaged));
        assert_eq!(kind_of(&anyhow::anyhow!("disk full")), None);
    }
}
