//! The crate's error type. Every variant names the file it concerns, so a message printed by the CLI
//! always tells the user which input or output was at fault.

use std::path::PathBuf;

/// Errors of the I/O crate. Every variant names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error while reading or writing the file.
    /// (The OS error is part of the message, not a separate `source`, so a printed error chain
    /// does not repeat it.)
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// The image decoder or encoder failed (corrupt, truncated or unsupported image).
    #[error("{path}: cannot decode image: {msg}")]
    Image { path: PathBuf, msg: String },
    /// The file's content does not have the expected layout (`.npy`, checkpoint, pickle, …).
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// The request cannot be served for this file (unknown extension, unsupported dtype, …).
    #[error("{path}: {msg}")]
    Unsupported { path: PathBuf, msg: String },
    /// The file declares a size over a limit (see `limits`); nothing was allocated for it.
    #[error("{path}: {what}, over {limit} (`--max-pixels N` raises the limit, 0 removes it)")]
    TooLarge { path: PathBuf, what: String, limit: String },
    /// A Jittor `.pkl` whose SHA-1 trailer does not match its content.
    #[error("{path}: checksum mismatch: the SHA-1 trailer does not match the pickle (file corrupted or truncated)")]
    Checksum { path: PathBuf },
    /// A pickle referring to a Python global outside the allow-list.
    #[error(
        "{path}: refusing to load checkpoint: it references the Python global `{global}`, which mmif never executes"
    )]
    ForbiddenGlobal { path: PathBuf, global: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), err: source }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format { path: path.into(), msg: msg.into() }
    }

    pub(crate) fn unsupported(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Unsupported { path: path.into(), msg: msg.into() }
    }

    pub(crate) fn image(path: impl Into<PathBuf>, msg: impl ToString) -> Self {
        Error::Image { path: path.into(), msg: msg.to_string() }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
