//! The manifest of a checkpoint generation directory: which images make the generation whole.
//!
//! Written last (temp file, fsync, rename, fsync of the directory), so a generation directory
//! with a readable manifest whose files all match is complete; anything else is not.

use crate::writer::WriteStats;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// File name of the manifest inside a generation directory.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// Version of the manifest's JSON layout.
pub const MANIFEST_FORMAT: u32 = 1;
/// A manifest larger than this is not ours.
const MAX_MANIFEST_LEN: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub comp_id: String,
    pub generation: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    pub images: Vec<ManifestEntry>,
}

/// One image of the generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// File name inside the generation directory (no directories).
    pub file: String,
    pub bytes: u64,
    /// `xxh3:` followed by 16 hex digits: XXH3-64 of the whole file.
    pub checksum: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "{} has no {MANIFEST_FILE}: the checkpoint did not complete; use an older generation",
        dir.display()
    )]
    Missing { dir: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a valid manifest ({detail}); use an older generation", path.display())]
    Invalid { path: PathBuf, detail: String },
    #[error(
        "image {file} is missing from {}: the generation is incomplete; use an older generation",
        dir.display()
    )]
    ImageMissing { dir: PathBuf, file: String },
    #[error(
        "image {file} is truncated (expected {expected} bytes, found {found}): the checkpoint \
         was interrupted; use an older generation"
    )]
    SizeMismatch {
        file: String,
        expected: u64,
        found: u64,
    },
    #[error(
        "image {file} checksum mismatch: the image is corrupt; restart from an older generation"
    )]
    ChecksumMismatch { file: String },
}

type Result<T> = std::result::Result<T, ManifestError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `xxh3:0123456789abcdef`.
pub fn format_checksum(sum: u64) -> String {
    format!("xxh3:{sum:016x}")
}

fn parse_checksum(s: &str) -> Option<u64> {
    let hex = s.strip_prefix("xxh3:")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// XXH3-64 of a whole file, streamed.
pub fn file_checksum(path: &Path) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.digest());
        }
        h.update(&buf[..n]);
    }
}

impl ManifestEntry {
    /// The entry for an image just written with [`crate::ImageWriter`].
    pub fn from_stats(file: impl Into<String>, stats: &WriteStats) -> Self {
        ManifestEntry {
            file: file.into(),
            bytes: stats.file_bytes,
            checksum: format_checksum(stats.file_xxh3),
        }
    }

    /// The entry for an existing image file (reads it whole).
    pub fn from_file(dir: &Path, file: &str) -> Result<Self> {
        let path = dir.join(file);
        let bytes = fs::metadata(&path).map_err(io_err(&path))?.len();
        let sum = file_checksum(&path).map_err(io_err(&path))?;
        Ok(ManifestEntry {
            file: file.into(),
            bytes,
            checksum: format_checksum(sum),
        })
    }
}

impl Manifest {
    pub fn new(comp_id: impl Into<String>, generation: u64, images: Vec<ManifestEntry>) -> Self {
        let created_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Manifest {
            format: MANIFEST_FORMAT,
            comp_id: comp_id.into(),
            generation,
            created_ns,
            images,
        }
    }

    /// Checks what the type cannot: format, safe and unique file names, checksum syntax.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!(
                "format {} (this tool reads {MANIFEST_FORMAT})",
                self.format
            ));
        }
        let mut names = std::collections::HashSet::new();
        for e in &self.images {
            let plain = !e.file.is_empty()
                && e.file != "."
                && e.file != ".."
                && !e.file.contains('/')
                && !e.file.contains('\0');
            if !plain {
                return Err(format!("image name {:?} is not a plain file name", e.file));
            }
            if !names.insert(e.file.as_str()) {
                return Err(format!("image {} is listed twice", e.file));
            }
            if parse_checksum(&e.checksum).is_none() {
                return Err(format!(
                    "image {} has a malformed checksum {:?}",
                    e.file, e.checksum
                ));
            }
        }
        Ok(())
    }

    /// Writes `dir/MANIFEST.json` atomically and durably; returns its path.
    pub fn write_atomic(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(MANIFEST_FILE);
        self.validate().map_err(|detail| ManifestError::Invalid {
            path: path.clone(),
            detail,
        })?;
        let tmp = dir.join(format!(".{MANIFEST_FILE}.{}.tmp", std::process::id()));
        let json = serde_json::to_vec_pretty(self).map_err(|e| ManifestError::Invalid {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            // The rename is durable only once the directory is synced.
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            ManifestError::Io {
                path: path.clone(),
                source: e,
            }
        })?;
        tracing::debug!(path = %path.display(), images = self.images.len(), "manifest written");
        Ok(path)
    }

    /// Reads and validates `dir/MANIFEST.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ManifestError::Missing {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(ManifestError::Io { path, source: e }),
        };
        let mut bytes = Vec::new();
        f.take(MAX_MANIFEST_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        if bytes.len() as u64 > MAX_MANIFEST_LEN {
            return Err(ManifestError::Invalid {
                path,
                detail: "larger than 64 MiB".into(),
            });
        }
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| ManifestError::Invalid {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        m.validate()
            .map_err(|detail| ManifestError::Invalid { path, detail })?;
        Ok(m)
    }

    /// Checks that every listed image exists with its recorded size and, when `checksums`, its
    /// recorded whole-file checksum (which reads every byte).
    pub fn verify_files(&self, dir: &Path, checksums: bool) -> Result<()> {
        for e in &self.images {
            let path = dir.join(&e.file);
            let found = match fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    return Err(ManifestError::ImageMissing {
                        dir: dir.to_path_buf(),
                        file: e.file.clone(),
                    });
                }
                Err(err) => return Err(ManifestError::Io { path, source: err }),
            };
            if found != e.bytes {
                return Err(ManifestError::SizeMismatch {
                    file: e.file.clone(),
                    expected: e.bytes,
                    found,
                });
            }
            if checksums {
                let sum = file_checksum(&path).map_err(io_err(&path))?;
                if Some(sum) != parse_checksum(&e.checksum) {
                    return Err(ManifestError::ChecksumMismatch {
                        file: e.file.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The result of [`newest_complete`]: the chosen generation and why newer-looking candidates
/// were passed over.
#[derive(Debug)]
pub struct Choice {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub skipped: Vec<(PathBuf, ManifestError)>,
}

/// Among candidate generation directories, the complete one with the highest generation
/// (ties: the newest `created_ns`). A candidate is complete when its manifest reads and
/// validates and [`Manifest::verify_files`] passes (with whole-file checksums when
/// `checksums`). Errors when none is complete, naming why the first candidate was refused.
pub fn newest_complete(
    candidates: impl IntoIterator<Item = PathBuf>,
    checksums: bool,
) -> std::result::Result<Choice, Vec<(PathBuf, ManifestError)>> {
    let mut skipped = Vec::new();
    let mut found: Vec<(PathBuf, Manifest)> = Vec::new();
    for dir in candidates {
        match Manifest::read(&dir) {
            Ok(m) => found.push((dir, m)),
            Err(e) => skipped.push((dir, e)),
        }
    }
    found.sort_by_key(|(_, m)| std::cmp::Reverse((m.generation, m.created_ns)));
    for (dir, manifest) in found {
        match manifest.verify_files(&dir, checksums) {
            Ok(()) => {
                return Ok(Choice {
                    dir,
                    manifest,
                    skipped,
                });
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "skipping incomplete generation: {e}");
                skipped.push((dir, e));
            }
        }
    }
    Err(skipped)
}

/// The immediate subdirectories of `parent`, as candidates for [`newest_complete`].
pub fn subdirectories(parent: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(parent)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Header, ImageWriter, WriterOptions};

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dmtcp-manifest-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn write_image(dir: &Path, name: &str) -> ManifestEntry {
        let f = File::create(dir.join(name)).unwrap();
        let (_, stats) = ImageWriter::new(f, &Header::new(), WriterOptions::default())
            .unwrap()
            .finish()
            .unwrap();
        ManifestEntry::from_stats(name, &stats)
    }

    #[test]
    fn write_read_verify_round_trip() {
        let dir = tempdir("rt");
        let a = write_image(&dir, "a.dmtcp");
        let b = write_image(&dir, "b.dmtcp");
        assert_eq!(ManifestEntry::from_file(&dir, "a.dmtcp").unwrap(), a);
        let m = Manifest::new("comp-7", 4, vec![a, b]);
        m.write_atomic(&dir).unwrap();
        let back = Manifest::read(&dir).unwrap();
        assert_eq!(back, m);
        back.verify_files(&dir, true).unwrap();
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");

        // Damage: appended byte, flipped byte, missing file.
        let p = dir.join("b.dmtcp");
        let mut bytes = fs::read(&p).unwrap();
        bytes.push(0);
        fs::write(&p, &bytes).unwrap();
        let e = back.verify_files(&dir, false).unwrap_err();
        assert!(matches!(e, ManifestError::SizeMismatch { .. }), "{e}");
        bytes.pop();
        bytes[3] ^= 1;
        fs::write(&p, &bytes).unwrap();
        back.verify_files(&dir, false).unwrap();
        let e = back.verify_files(&dir, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "image b.dmtcp checksum mismatch: the image is corrupt; restart from an older generation"
        );
        fs::remove_file(&p).unwrap();
        assert!(matches!(
            back.verify_files(&dir, true),
            Err(ManifestError::ImageMissing { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_and_invalid_manifests_are_refused() {
        let dir = tempdir("bad");
        assert!(matches!(
            Manifest::read(&dir),
            Err(ManifestError::Missing { .. })
        ));
        fs::write(dir.join(MANIFEST_FILE), b"{not json").unwrap();
        assert!(matches!(
            Manifest::read(&dir),
            Err(ManifestError::Invalid { .. })
        ));
        for bad in ["../etc/passwd", "", "a/b"] {
            let m = Manifest::new(
                "c",
                1,
                vec![ManifestEntry {
                    file: bad.into(),
                    bytes: 1,
                    checksum: format_checksum(1),
                }],
            );
            assert!(m.write_atomic(&dir).is_err(), "{bad:?} accepted");
            fs::write(dir.join(MANIFEST_FILE), serde_json::to_vec(&m).unwrap()).unwrap();
            assert!(matches!(
                Manifest::read(&dir),
                Err(ManifestError::Invalid { .. })
            ));
        }
        let entry = ManifestEntry {
            file: "x".into(),
            bytes: 1,
            checksum: "md5:00".into(),
        };
        assert!(
            Manifest::new("c", 1, vec![entry.clone()])
                .validate()
                .is_err()
        );
        let dup = ManifestEntry {
            checksum: format_checksum(7),
            ..entry
        };
        assert!(
            Manifest::new("c", 1, vec![dup.clone(), dup])
                .validate()
                .is_err()
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn newest_complete_skips_damaged_generations() {
        let root = tempdir("gens");
        let mk = |name: &str, generation: u64| {
            let d = root.join(name);
            fs::create_dir_all(&d).unwrap();
            let e = write_image(&d, "p.dmtcp");
            Manifest::new("c", generation, vec![e])
                .write_atomic(&d)
                .unwrap();
            d
        };
        let g1 = mk("gen1", 1);
        let g2 = mk("gen2", 2);
        let g3 = mk("gen3", 3);
        fs::create_dir_all(root.join("gen4")).unwrap(); // interrupted: no manifest
        let candidates = subdirectories(&root).unwrap();
        assert_eq!(candidates.len(), 4);
        let c = newest_complete(candidates.clone(), true).unwrap();
        assert_eq!((c.dir.clone(), c.manifest.generation), (g3.clone(), 3));
        assert_eq!(c.skipped.len(), 1);

        // Generation 3 damaged (truncated image): fall back to 2.
        let img = g3.join("p.dmtcp");
        let len = fs::metadata(&img).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&img)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        let c = newest_complete(candidates.clone(), false).unwrap();
        assert_eq!(c.dir, g2);
        assert!(
            c.skipped
                .iter()
                .any(|(d, e)| *d == g3 && matches!(e, ManifestError::SizeMismatch { .. }))
        );

        // Generation 2's image corrupted in place: only checksums notice.
        let img = g2.join("p.dmtcp");
        let mut b = fs::read(&img).unwrap();
        b[40] ^= 1;
        fs::write(&img, &b).unwrap();
        assert_eq!(newest_complete(candidates.clone(), false).unwrap().dir, g2);
        assert_eq!(newest_complete(candidates.clone(), true).unwrap().dir, g1);
        fs::remove_file(g1.join(MANIFEST_FILE)).unwrap();
        let why = newest_complete(candidates, true).unwrap_err();
        assert_eq!(why.len(), 4);
        fs::remove_dir_all(&root).unwrap();
    }
}
