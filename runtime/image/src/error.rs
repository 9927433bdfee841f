//! The typed errors of the image crate; each message names the problem and what to do.

use std::fmt;
use std::io;

/// The parts of an image file, named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Prelude,
    Header,
    Data,
    RegionTable,
    FrameIndex,
    Trailer,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Prelude => "prelude",
            Part::Header => "header",
            Part::Data => "data",
            Part::RegionTable => "region table",
            Part::FrameIndex => "frame index",
            Part::Trailer => "trailer",
        })
    }
}

/// Which checksum of a frame failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameCheck {
    /// The bytes on disk do not match their checksum.
    Stored,
    /// The decoded bytes do not match their checksum (or have the wrong length).
    Raw,
    /// The stored bytes do not decode.
    Decode,
}

const DAMAGED: &str = "the image is corrupt; restart from an older generation";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not a checkpoint image (bad magic)")]
    NotAnImage,
    #[error("format version {found} is newer than this tool ({supported}); use a newer dmtcp")]
    TooNew { found: u32, supported: u32 },
    #[error("format version {found} is not supported (this tool reads {supported})")]
    Unsupported { found: u32, supported: u32 },
    #[error(
        "image is truncated (expected {expected} bytes, found {found}): the checkpoint was \
         interrupted; use an older generation"
    )]
    Truncated { expected: u64, found: u64 },
    #[error(
        "image is incomplete (no trailer after {found} bytes): the checkpoint was interrupted; \
         use an older generation"
    )]
    Incomplete { found: u64 },
    #[error("{part} checksum mismatch: {DAMAGED}")]
    Checksum { part: Part },
    #[error("{part} is malformed ({detail}): {DAMAGED}")]
    Malformed { part: Part, detail: String },
    #[error("{part} is too large ({len} bytes, limit {limit}): {DAMAGED}")]
    TooLarge { part: Part, len: u64, limit: u64 },
    #[error("frame {frame} ({location}) {}: {DAMAGED}", match check {
        FrameCheck::Stored => "checksum mismatch",
        FrameCheck::Raw => "checksum mismatch after decompression",
        FrameCheck::Decode => "does not decompress",
    })]
    Frame {
        frame: usize,
        location: String,
        check: FrameCheck,
    },
    #[error(
        "parent image {path} (generation {generation}) {what}: this incremental image stores \
         only what changed since it; restore that file, or restart from an older generation \
         that does not need it"
    )]
    Parent {
        path: String,
        generation: u64,
        what: String,
    },
    #[error("no frame {0} in this image")]
    NoSuchFrame(usize),
    #[error("no region {0} in this image")]
    NoSuchRegion(usize),
    #[error("buffer of {got} bytes is too small (need {need})")]
    BufferTooSmall { need: u64, got: u64 },
    /// The writer was called in a way its contract forbids (a bug in the caller).
    #[error("image writer misuse: {0}")]
    Misuse(String),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
}

impl ImageError {
    pub(crate) fn malformed(part: Part, detail: impl Into<String>) -> Self {
        ImageError::Malformed {
            part,
            detail: detail.into(),
        }
    }

    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| ImageError::Io { context, source }
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;
