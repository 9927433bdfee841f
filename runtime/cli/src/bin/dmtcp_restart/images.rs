//! Choosing and validating the images to restart, before anything is changed.

use dmtcp_image::{Image, ImageError};
use dmtcp_restorer::abi::{LAYOUT_SECTION, SavedLayout};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImageCheck {
    #[error("{path}: no such file")]
    Missing { path: String },
    #[error("{path}: {err}")]
    Bad { path: String, err: ImageError },
    #[error(
        "{path}: the image is incomplete (a .part file is a checkpoint still being written or interrupted); restart from a complete .dmtcp image"
    )]
    Partial { path: String },
    #[error("{path}: {what}")]
    Incompatible { path: String, what: String },
    #[error("{dir}: {what}")]
    Dir { dir: String, what: String },
}

pub struct Checked {
    pub path: PathBuf,
    pub image: Image<std::fs::File>,
    pub layout: SavedLayout,
}

/// The newest complete generation in `dir`: every `*.dmtcp` image of the highest generation.
pub fn from_restartdir(dir: &Path) -> Result<Vec<PathBuf>, ImageCheck> {
    let d = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| ImageCheck::Dir {
        dir: d.clone(),
        what: e.to_string(),
    })?;
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("dmtcp") {
            continue;
        }
        // An image that does not open is not part of a complete generation.
        let Ok(f) = std::fs::File::open(&p) else {
            continue;
        };
        let Ok(h) = dmtcp_image::read_header(&f) else {
            continue;
        };
        found.push((h.process.generation, p));
    }
    let Some(newest) = found.iter().map(|(g, _)| *g).max() else {
        return Err(ImageCheck::Dir {
            dir: d,
            what: "no complete checkpoint images (*.dmtcp) here".into(),
        });
    };
    let mut out: Vec<PathBuf> = found
        .into_iter()
        .filter(|(g, _)| *g == newest)
        .map(|(_, p)| p)
        .collect();
    out.sort();
    Ok(out)
}

/// Opens `path` and checks everything that can be checked before restarting it: format,
/// metadata checksums, owner, architecture, and that this kernel's vdso matches.
pub fn check(path: &Path, strict: bool, own_fingerprint: &[u8]) -> Result<Checked, ImageCheck> {
    let p = path.display().to_string();
    if path.to_string_lossy().ends_with(".part") {
        return Err(ImageCheck::Partial { path: p });
    }
    if !path.exists() {
        return Err(ImageCheck::Missing { path: p });
    }
    let image = Image::open_path(path).map_err(|err| ImageCheck::Bad {
        path: p.clone(),
        err,
    })?;
    let h = image.header();
    let bad = |what: String| ImageCheck::Incompatible {
        path: p.clone(),
        what,
    };
    if h.arch != std::env::consts::ARCH {
        return Err(bad(format!(
            "the image is for {}, this machine is {}",
            h.arch,
            std::env::consts::ARCH
        )));
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if strict && h.process.uid != uid {
        return Err(bad(format!(
            "the image belongs to uid {}, not to you (uid {uid}); use --no-strict-checking to restart it anyway",
            h.process.uid
        )));
    }
    if h.entry == 0 {
        return Err(bad(
            "the image has no restart entry point (written by an incomplete runtime)".into(),
        ));
    }
    let layout = h
        .section(LAYOUT_SECTION)
        .and_then(SavedLayout::decode)
        .ok_or_else(|| bad("the image has no valid address-space layout section".into()))?;
    if h.vdso_fingerprint != own_fingerprint {
        return Err(bad(format!(
            "the image was written under another kernel or vdso ({}, this is {}); restart it on the machine type and kernel it was checkpointed on",
            h.kernel_release,
            crate::kernel_release()
        )));
    }
    Ok(Checked {
        path: path.to_path_buf(),
        image,
        layout,
    })
}
