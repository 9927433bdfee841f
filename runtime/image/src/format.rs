//! Fixed binary pieces of the file: magic line, prelude, trailer, limits, checksums.

use crate::error::{ImageError, Part, Result};

/// First bytes of every image: a line that `head -1` shows.
pub const MAGIC: &[u8; 15] = b"DMTCP-RS IMAGE\n";
/// The newest format version this crate writes and reads. Version 2 adds reference frames
/// (incremental images, see `chain`); the writer emits it only for images that have parents.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this crate still reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Prelude: magic, version u32, header length u32, header xxh3 u64.
pub const PRELUDE_LEN: usize = MAGIC.len() + 4 + 4 + 8;

/// Magic of the trailer, the last [`TRAILER_LEN`] bytes of the file.
pub const TRAILER_MAGIC: &[u8; 8] = b"DMTCPEND";
pub const TRAILER_LEN: usize = 96;

/// Largest raw size of one frame.
pub const MAX_FRAME_RAW: usize = 4 << 20;
/// Default raw size of one frame.
pub const DEFAULT_FRAME_SIZE: usize = MAX_FRAME_RAW;
/// Default zstd level of compressed frames: -1 (`zstd --fast=1`). On heap-like data the
/// checkpoint writer spends 0.89x the CPU of level 1 and restart decodes with 0.82x (literals
/// stay uncompressed) for a 4 % larger image (3.44x against 3.57x); see docs/performance.md.
/// The level is not recorded: every zstd frame decodes with the same decoder.
pub const DEFAULT_LEVEL: i32 = -1;
/// Limits on the metadata parts; a larger length is damage, not a reason to allocate.
pub const MAX_HEADER_LEN: u64 = 64 << 20;
pub const MAX_TABLE_LEN: u64 = 256 << 20;
pub const MAX_INDEX_LEN: u64 = 64 << 20;

/// The checksum used everywhere in the format: XXH3-64 with seed 0.
pub fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The fixed-size trailer that points at the region table and the frame index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trailer {
    pub version: u32,
    pub data_offset: u64,
    pub data_len: u64,
    pub table_offset: u64,
    pub table_len: u64,
    pub table_xxh3: u64,
    pub index_offset: u64,
    pub index_len: u64,
    pub index_xxh3: u64,
    pub file_len: u64,
}

impl Trailer {
    pub fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[0..8].copy_from_slice(TRAILER_MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        // 12..16 reserved, zero.
        let words = [
            self.data_offset,
            self.data_len,
            self.table_offset,
            self.table_len,
            self.table_xxh3,
            self.index_offset,
            self.index_len,
            self.index_xxh3,
            self.file_len,
        ];
        for (i, w) in words.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        let sum = checksum(&b[..88]);
        b[88..96].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Decodes and checks magic and checksum; `found` is the file length, for the message.
    pub fn decode(b: &[u8; TRAILER_LEN], found: u64) -> Result<Self> {
        if &b[0..8] != TRAILER_MAGIC {
            return Err(ImageError::Incomplete { found });
        }
        if checksum(&b[..88]) != u64_at(b, 88) {
            return Err(ImageError::Checksum {
                part: Part::Trailer,
            });
        }
        if b[12..16] != [0; 4] {
            return Err(ImageError::malformed(
                Part::Trailer,
                "reserved bytes are not zero",
            ));
        }
        Ok(Trailer {
            version: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            data_offset: u64_at(b, 16),
            data_len: u64_at(b, 24),
            table_offset: u64_at(b, 32),
            table_len: u64_at(b, 40),
            table_xxh3: u64_at(b, 48),
            index_offset: u64_at(b, 56),
            index_len: u64_at(b, 64),
            index_xxh3: u64_at(b, 72),
            file_len: u64_at(b, 80),
        })
    }
}

/// The prelude before the header bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prelude {
    pub version: u32,
    pub header_len: u32,
    pub header_xxh3: u64,
}

impl Prelude {
    pub fn encode(&self) -> [u8; PRELUDE_LEN] {
        let mut b = [0u8; PRELUDE_LEN];
        let m = MAGIC.len();
        b[..m].copy_from_slice(MAGIC);
        b[m..m + 4].copy_from_slice(&self.version.to_le_bytes());
        b[m + 4..m + 8].copy_from_slice(&self.header_len.to_le_bytes());
        b[m + 8..m + 16].copy_from_slice(&self.header_xxh3.to_le_bytes());
        b
    }

    /// Decodes the magic and version; the version is checked before anything else so an image
    /// from a newer tool gets the right message.
    pub fn decode(b: &[u8; PRELUDE_LEN]) -> Result<Self> {
        let m = MAGIC.len();
        if &b[..m] != MAGIC {
            return Err(ImageError::NotAnImage);
        }
        let version = u32::from_le_bytes([b[m], b[m + 1], b[m + 2], b[m + 3]]);
        if version > FORMAT_VERSION {
            return Err(ImageError::TooNew {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version < MIN_FORMAT_VERSION {
            return Err(ImageError::Unsupported {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let header_len = u32::from_le_bytes([b[m + 4], b[m + 5], b[m + 6], b[m + 7]]);
        Ok(Prelude {
            version,
            header_len,
            header_xxh3: u64_at(b, m + 8),
        })
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trip_and_checks() {
        let t = Trailer {
            version: 1,
            data_offset: 100,
            data_len: 200,
            table_offset: 300,
            table_len: 4,
            table_xxh3: 5,
            index_offset: 304,
            index_len: 6,
            index_xxh3: 7,
            file_len: 406,
        };
        let mut b = t.encode();
        assert_eq!(Trailer::decode(&b, 406).unwrap(), t);
        b[20] ^= 1;
        assert!(matches!(
            Trailer::decode(&b, 406),
            Err(ImageError::Checksum {
                part: Part::Trailer
            })
        ));
        b[0] = b'x';
        assert!(matches!(
            Trailer::decode(&b, 406),
            Err(ImageError::Incomplete { found: 406 })
        ));
    }

    #[test]
    fn prelude_versions() {
        let p = Prelude {
            version: FORMAT_VERSION,
            header_len: 7,
            header_xxh3: 9,
        };
        let mut b = p.encode();
        assert_eq!(Prelude::decode(&b).unwrap(), p);
        b[MAGIC.len()] = 3;
        let e = Prelude::decode(&b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "format version 3 is newer than this tool (2); use a newer dmtcp"
        );
        b[MAGIC.len()] = 1;
        assert_eq!(Prelude::decode(&b).unwrap().version, 1);
        b[MAGIC.len()] = 0;
        assert!(matches!(
            Prelude::decode(&b),
            Err(ImageError::Unsupported { found: 0, .. })
        ));
        b[0] = b'Z';
        assert!(matches!(Prelude::decode(&b), Err(ImageError::NotAnImage)));
    }
}
