//! The checkpoint image: the on-disk form of one checkpointed process.
//!
//! Layout (see `docs/image-format.md`): a magic line, a header, data frames, then the region
//! table, the frame index and a fixed-size trailer. The writer ([`ImageWriter`]) streams without
//! seeking; the reader ([`Image`]) validates all metadata on open and verifies frame checksums
//! when it decodes them, so frames can be read in parallel, independently and lazily.
#![forbid(unsafe_code)]

pub mod chain;
pub mod compat;
pub mod delta;
pub mod error;
pub mod format;
pub mod frame;
pub mod header;
pub mod inspect;
pub mod manifest;
pub mod reader;
pub mod region;
pub mod source;
pub mod sysv_ipc;
pub mod writer;

pub use chain::{PARENTS_SECTION, ParentImage};
pub use delta::{Basis, DeltaStats, DeltaWriter};
pub use error::{FrameCheck, ImageError, Part, Result};
pub use format::{DEFAULT_LEVEL, FORMAT_VERSION, MAX_FRAME_RAW, checksum};
pub use frame::{Codec, EncodedFrame, FrameDecoder, FrameEncoder, FrameEntry, compress_frame};
pub use header::{Header, ProcessIdentity, RseqLayout, Section};
pub use reader::{FrameScratch, Image, Piece, VerifyStats, read_header};
pub use region::{FileRef, Prot, Region, RegionFlags, RegionId, RegionMeta, Run, Storage};
pub use source::{SeekSource, Source};
pub use writer::{ImageWriter, WriteStats, WriterBuffers, WriterOptions};
