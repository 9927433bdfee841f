//! Incremental images (format version 2): an image may store, instead of a frame's bytes, a
//! reference to a frame of an older image of the same process, its *parent*. The parents are
//! listed in the header section [`PARENTS_SECTION`]; a frame whose codec is
//! [`Codec::Ref`](crate::Codec::Ref) names one of them and a frame index there.
//!
//! References are flat: a writer never points at a frame that is itself a reference, it points
//! at the image that stores the bytes. Reading a generation therefore opens its parents, never
//! their parents, and an image may be deleted once no kept image lists it as a parent.
//!
//! Parents are plain file names in the image's own directory, identified by their length and
//! the checksum of their frame index (a renamed or replaced file is noticed before any frame is
//! read), and every referenced frame must carry the same raw length and raw checksum there.

use crate::error::{ImageError, Part, Result};
use crate::frame::Codec;
use crate::header::Header;
use crate::reader::Image;
use crate::source::Source;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The header section listing an incremental image's parents (postcard `Vec<ParentImage>`).
pub const PARENTS_SECTION: &str = "image.parents";

/// One parent of an incremental image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentImage {
    /// File name in the image's directory (no `/`).
    pub file: String,
    /// The parent's checkpoint generation (for messages and retention).
    pub generation: u64,
    /// The parent's size and its trailer's frame-index checksum: together they identify it.
    pub file_len: u64,
    pub index_xxh3: u64,
}

impl ParentImage {
    /// Describes the opened image `image`, which will be found as `file`.
    pub fn of<S: Source>(file: impl Into<String>, image: &Image<S>) -> ParentImage {
        ParentImage {
            file: file.into(),
            generation: image.header().process.generation,
            file_len: image.file_len(),
            index_xxh3: image.trailer().index_xxh3,
        }
    }
}

/// Encodes a parent list for [`PARENTS_SECTION`].
pub fn encode_parents(parents: &[ParentImage]) -> Vec<u8> {
    // A Vec of plain structs always serializes.
    postcard::to_stdvec(parents).unwrap_or_default()
}

/// The parents listed in `header` (empty for a full image). Names must be plain file names.
pub fn parents_of(header: &Header) -> Result<Vec<ParentImage>> {
    let Some(bytes) = header.section(PARENTS_SECTION) else {
        return Ok(Vec::new());
    };
    let parents: Vec<ParentImage> = postcard::from_bytes(bytes).map_err(|e| {
        ImageError::malformed(Part::Header, format!("{PARENTS_SECTION} undecodable: {e}"))
    })?;
    for p in &parents {
        if p.file.is_empty() || p.file.contains('/') || p.file == "." || p.file == ".." {
            return Err(ImageError::malformed(
                Part::Header,
                format!("parent image name {:?} is not a plain file name", p.file),
            ));
        }
    }
    Ok(parents)
}

/// Reference frames need format version 2 and must name a declared parent.
pub(crate) fn check_refs(
    frames: &[crate::frame::FrameEntry],
    version: u32,
    parents: usize,
) -> Result<()> {
    for (i, f) in frames.iter().enumerate() {
        if let Codec::Ref { parent, .. } = f.codec {
            if version < 2 {
                return Err(ImageError::malformed(
                    Part::FrameIndex,
                    format!("frame {i} is a reference in a format version {version} image"),
                ));
            }
            if parent as usize >= parents {
                return Err(ImageError::malformed(
                    Part::FrameIndex,
                    format!("frame {i} refers to parent {parent}, which is not declared"),
                ));
            }
        }
    }
    Ok(())
}

/// The parents of one opened image: declared in its header, opened by
/// [`Image::attach_parents`].
#[derive(Default)]
pub(crate) struct Parents {
    pub(crate) declared: Vec<ParentImage>,
    pub(crate) opened: Vec<Image<std::fs::File>>,
    /// Where they were looked for (for messages).
    pub(crate) paths: Vec<PathBuf>,
}

impl Parents {
    pub(crate) fn error(&self, i: usize, what: impl Into<String>) -> ImageError {
        let p = &self.declared[i];
        let path = self
            .paths
            .get(i)
            .map_or_else(|| p.file.clone(), |x| x.display().to_string());
        ImageError::Parent {
            path,
            generation: p.generation,
            what: what.into(),
        }
    }
}

impl<S: Source> Image<S> {
    /// The parents this image's reference frames point into (empty for a full image).
    pub fn parents(&self) -> &[ParentImage] {
        &self.chain().declared
    }

    /// The opened parents, in the order of [`parents`](Self::parents) (empty until attached).
    pub fn parent_images(&self) -> &[Image<std::fs::File>] {
        &self.chain().opened
    }

    /// Frames stored in this image's own file (not references).
    pub fn own_frames(&self) -> usize {
        self.frames()
            .iter()
            .filter(|f| !matches!(f.codec, Codec::Ref { .. }))
            .count()
    }

    /// Opens every parent in `dir` and checks, before any frame is read, that each is the file
    /// the image was written against and holds every referenced frame as recorded. An image
    /// opened with [`Image::open_path`] has its parents attached already.
    pub fn attach_parents(&mut self, dir: &Path) -> Result<()> {
        let declared = self.chain().declared.clone();
        let mut opened = Vec::with_capacity(declared.len());
        let paths: Vec<PathBuf> = declared.iter().map(|p| dir.join(&p.file)).collect();
        self.chain_mut().paths = paths.clone();
        for (i, (p, path)) in declared.iter().zip(&paths).enumerate() {
            let file = std::fs::File::open(path).map_err(|e| {
                self.chain().error(
                    i,
                    if e.kind() == std::io::ErrorKind::NotFound {
                        "is missing".to_string()
                    } else {
                        format!("cannot be opened ({e})")
                    },
                )
            })?;
            let parent = Image::open(file)
                .map_err(|e| self.chain().error(i, format!("is unreadable ({e})")))?;
            if parent.file_len() != p.file_len || parent.trailer().index_xxh3 != p.index_xxh3 {
                return Err(self
                    .chain()
                    .error(i, "is not the image this one was written against"));
            }
            opened.push(parent);
        }
        for (n, f) in self.frames().iter().enumerate() {
            let Codec::Ref { parent, frame } = f.codec else {
                continue;
            };
            let (pi, pf) = (parent as usize, frame as usize);
            let ok = opened[pi].frames().get(pf).is_some_and(|t| {
                !matches!(t.codec, Codec::Ref { .. })
                    && t.raw_len == f.raw_len
                    && t.raw_xxh3 == f.raw_xxh3
            });
            if !ok {
                return Err(self.chain().error(
                    pi,
                    format!("does not hold frame {pf} as frame {n} of this image expects"),
                ));
            }
        }
        self.chain_mut().opened = opened;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_lists_round_trip_and_names_are_plain() {
        let p = ParentImage {
            file: "ckpt_a_1.dmtcp.g3".into(),
            generation: 3,
            file_len: 1000,
            index_xxh3: 7,
        };
        let mut h = Header::new();
        assert!(parents_of(&h).unwrap().is_empty());
        h.push_section(PARENTS_SECTION, encode_parents(std::slice::from_ref(&p)));
        assert_eq!(parents_of(&h).unwrap(), vec![p.clone()]);
        let mut bad = Header::new();
        let evil = ParentImage {
            file: "../etc/x".into(),
            ..p
        };
        bad.push_section(PARENTS_SECTION, encode_parents(&[evil]));
        let e = parents_of(&bad).unwrap_err().to_string();
        assert!(e.contains("not a plain file name"), "{e}");
        let mut junk = Header::new();
        junk.push_section(PARENTS_SECTION, vec![5, 1]);
        assert!(parents_of(&junk).is_err());
    }
}
