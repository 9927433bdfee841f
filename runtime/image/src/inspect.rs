//! A readable summary of an image, as text or JSON (for `dmtcp_inspect`).

use crate::header::{ProcessIdentity, RseqLayout};
use crate::reader::Image;
use crate::region::{FileRef, Storage};
use crate::source::Source;
use serde::Serialize;
use std::fmt::{self, Write as _};

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub file_bytes: u64,
    pub format_version: u32,
    pub arch: String,
    pub kernel_release: String,
    /// Hex.
    pub vdso_fingerprint: String,
    pub page_size: u32,
    pub rseq: Option<RseqLayout>,
    pub process: ProcessIdentity,
    /// Hex.
    pub entry: String,
    pub sections: Vec<SectionSummary>,
    pub regions: Vec<RegionSummary>,
    pub totals: Totals,
    /// Parent images of an incremental image (empty for a full one).
    pub parents: Vec<ParentSummary>,
}

/// One parent of an incremental image and what this image takes from it.
#[derive(Debug, Clone, Serialize)]
pub struct ParentSummary {
    pub file: String,
    pub generation: u64,
    /// Reference frames pointing into it, and their raw bytes.
    pub frames: usize,
    pub raw_bytes: u64,
    /// The parent was opened and checked (the image was opened by path).
    pub attached: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionSummary {
    pub name: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegionSummary {
    /// Hex addresses.
    pub start: String,
    pub end: String,
    pub len: u64,
    /// `rwx` form.
    pub prot: String,
    pub flags: Vec<String>,
    pub path: String,
    pub offset: u64,
    pub dev: u64,
    pub inode: u64,
    /// `zero`, `pages` or `file`.
    pub storage: &'static str,
    pub runs: usize,
    /// Saved bytes.
    pub raw_bytes: u64,
    /// Bytes in the file for this region (frames shared by regions are split pro rata).
    pub stored_bytes: u64,
    pub file: Option<FileRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub regions: usize,
    pub mapped_bytes: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub frames: usize,
    pub zstd_frames: usize,
    /// Frames that are references to a parent image, and their raw bytes.
    pub ref_frames: usize,
    pub ref_bytes: u64,
    /// raw bytes of this file's own frames / stored (1.0 when nothing is saved).
    pub compression_ratio: f64,
}

impl Summary {
    /// Summarizes an opened image (metadata only; frames are not read).
    pub fn of<S: Source>(image: &Image<S>) -> Summary {
        let h = image.header();
        // Fractional shares, rounded once per region: a frame spread over thousands of single
        // pages would otherwise round every share down to zero.
        let mut shares = vec![0f64; image.regions().len()];
        for (i, f) in image.frames().iter().enumerate() {
            let ratio = f64::from(f.stored_len) / f64::from(f.raw_len.max(1));
            for p in image.frame_pieces(i).unwrap_or_default() {
                shares[p.region.0 as usize] += p.len as f64 * ratio;
            }
        }
        let stored = shares.into_iter().map(|s| s.round() as u64);
        let regions: Vec<RegionSummary> = image
            .regions()
            .iter()
            .zip(stored)
            .map(|(r, stored_bytes)| {
                let (storage, runs, file) = match &r.storage {
                    Storage::Zero => ("zero", 0, None),
                    Storage::Pages(runs) => ("pages", runs.len(), None),
                    Storage::File(f) => ("file", 0, Some(f.clone())),
                };
                RegionSummary {
                    start: format!("{:#x}", r.meta.start),
                    end: format!("{:#x}", r.meta.end()),
                    len: r.meta.len,
                    prot: r.meta.prot.to_string(),
                    flags: r.meta.flags.names(),
                    path: r.meta.path.clone(),
                    offset: r.meta.offset,
                    dev: r.meta.dev,
                    inode: r.meta.inode,
                    storage,
                    runs,
                    raw_bytes: r.saved_bytes(),
                    stored_bytes,
                    file,
                }
            })
            .collect();
        let raw: u64 = image.raw_bytes();
        let mut parents: Vec<ParentSummary> = image
            .parents()
            .iter()
            .enumerate()
            .map(|(i, p)| ParentSummary {
                file: p.file.clone(),
                generation: p.generation,
                frames: 0,
                raw_bytes: 0,
                attached: image.parent_images().len() > i,
            })
            .collect();
        for f in image.frames() {
            if let crate::Codec::Ref { parent, .. } = f.codec
                && let Some(p) = parents.get_mut(parent as usize)
            {
                p.frames += 1;
                p.raw_bytes += u64::from(f.raw_len);
            }
        }
        let stored_total: u64 = image.frames().iter().map(|f| u64::from(f.stored_len)).sum();
        let totals = Totals {
            regions: regions.len(),
            mapped_bytes: image.regions().iter().map(|r| r.meta.len).sum(),
            raw_bytes: raw,
            stored_bytes: stored_total,
            frames: image.frames().len(),
            zstd_frames: image
                .frames()
                .iter()
                .filter(|f| f.codec == crate::Codec::Zstd)
                .count(),
            ref_frames: parents.iter().map(|p| p.frames).sum(),
            ref_bytes: parents.iter().map(|p| p.raw_bytes).sum(),
            compression_ratio: if stored_total == 0 {
                1.0
            } else {
                (raw - parents.iter().map(|p| p.raw_bytes).sum::<u64>()) as f64
                    / stored_total as f64
            },
        };
        Summary {
            file_bytes: image.file_len(),
            format_version: image.trailer().version,
            arch: h.arch.clone(),
            kernel_release: h.kernel_release.clone(),
            vdso_fingerprint: h
                .vdso_fingerprint
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            page_size: h.page_size,
            rseq: h.rseq,
            process: h.process.clone(),
            entry: format!("{:#x}", h.entry),
            sections: h
                .sections
                .iter()
                .map(|s| SectionSummary {
                    name: s.name.clone(),
                    bytes: s.data.len() as u64,
                })
                .collect(),
            regions,
            totals,
            parents,
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        // A Summary holds only strings, numbers and finite floats: serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `2026-11-24 20:39:09 UTC` from nanoseconds since the epoch.
pub fn utc_time(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil-from-days (proleptic Gregorian), after H. Hinnant.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.process;
        let t = &self.totals;
        writeln!(
            f,
            "image format {}, {}",
            self.format_version,
            human_bytes(self.file_bytes)
        )?;
        writeln!(
            f,
            "process   {} pid {} (virtual {}) ppid {} pgid {} sid {}",
            p.program, p.pid, p.virtual_pid, p.ppid, p.pgid, p.sid
        )?;
        writeln!(
            f,
            "identity  upid {} comp {} generation {}",
            p.upid, p.comp_id, p.generation
        )?;
        writeln!(
            f,
            "host      {} uid {} gid {} at {}",
            p.hostname,
            p.uid,
            p.gid,
            utc_time(p.ckpt_time_ns)
        )?;
        let rseq = match self.rseq {
            Some(r) => format!("size {} offset {}", r.size, r.offset),
            None => "none".into(),
        };
        writeln!(
            f,
            "platform  {} kernel {} page {} rseq {} entry {}",
            self.arch, self.kernel_release, self.page_size, rseq, self.entry
        )?;
        writeln!(
            f,
            "vdso      {}",
            if self.vdso_fingerprint.is_empty() {
                "-"
            } else {
                &self.vdso_fingerprint
            }
        )?;
        if !self.parents.is_empty() {
            writeln!(
                f,
                "chain     incremental: {} in {} frames taken from {} older image(s)",
                human_bytes(self.totals.ref_bytes),
                self.totals.ref_frames,
                self.parents.len()
            )?;
            for p in &self.parents {
                writeln!(
                    f,
                    "  generation {:<5} {}  {} frames, {}{}",
                    p.generation,
                    p.file,
                    p.frames,
                    human_bytes(p.raw_bytes),
                    if p.attached { "" } else { " (not opened)" }
                )?;
            }
        }
        writeln!(f, "sections ({}):", self.sections.len())?;
        for s in &self.sections {
            writeln!(f, "  {:<24} {:>12}", s.name, human_bytes(s.bytes))?;
        }
        writeln!(f, "regions ({}):", self.regions.len())?;
        writeln!(
            f,
            "  {:<33} {:<4} {:>10} {:<6} {:>10} {:>10}  name [flags]",
            "address", "prot", "size", "store", "saved", "in file"
        )?;
        for r in &self.regions {
            let mut name = r.path.clone();
            if !r.flags.is_empty() {
                let _ = write!(name, " [{}]", r.flags.join(","));
            }
            writeln!(
                f,
                "  {:<33} {:<4} {:>10} {:<6} {:>10} {:>10}  {}",
                format!("{}-{}", r.start, r.end),
                r.prot,
                human_bytes(r.len),
                r.storage,
                human_bytes(r.raw_bytes),
                human_bytes(r.stored_bytes),
                name
            )?;
        }
        write!(
            f,
            "total     {} mapped, {} saved, {} stored in {} frames ({} zstd), ratio {:.2}",
            human_bytes(t.mapped_bytes),
            human_bytes(t.raw_bytes),
            human_bytes(t.stored_bytes),
            t.frames,
            t.zstd_frames,
            t.compression_ratio
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_time_and_sizes() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc_time(1_700_000_000_000_000_000),
            "2023-11-14 22:13:20 UTC"
        );
        assert_eq!(utc_time(951_782_400_000_000_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(human_bytes(1000), "1000 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(4 << 20), "4.0 MiB");
    }
}
