//! Plugin sections of the checkpoint image: bytes a plugin saves during `PreCheckpoint`
//! (`dmtcp_plugin_save`), stored by the image writer as section `plugin:<name>`, and handed
//! back after `Restart` (`dmtcp_plugin_load`).
//!
//! The saved copy also stays in the runtime's own memory, which is part of the image; so a
//! restarted process finds its sections even if the restart path passes none explicitly.

use std::sync::Mutex;

/// Prefix of the image section names.
pub const SECTION_PREFIX: &str = "plugin:";

/// Largest section a plugin may save (keeps a runaway plugin from bloating every image).
pub const MAX_SECTION: usize = 64 << 20;

struct Sections {
    /// Saved during the checkpoint in progress (or the last one).
    saved: Vec<(String, Vec<u8>)>,
    /// Read from the image at restart; `None` until the restart path provides them.
    restored: Option<Vec<(String, Vec<u8>)>>,
}

static SECTIONS: Mutex<Sections> = Mutex::new(Sections {
    saved: Vec::new(),
    restored: None,
});

fn lock() -> std::sync::MutexGuard<'static, Sections> {
    SECTIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new checkpoint begins: forget the previous one's sections.
pub fn begin_checkpoint() {
    lock().saved.clear();
}

/// Saves (or replaces) the section `name`.
pub fn save(name: &str, data: &[u8]) {
    let mut s = lock();
    match s.saved.iter_mut().find(|(n, _)| n == name) {
        Some((_, d)) => {
            d.clear();
            d.extend_from_slice(data);
        }
        None => s.saved.push((name.to_string(), data.to_vec())),
    }
}

/// The section `name` as restored (or, without restored sections, as last saved).
pub fn load(name: &str) -> Option<Vec<u8>> {
    let s = lock();
    let list = s.restored.as_ref().unwrap_or(&s.saved);
    list.iter().find(|(n, _)| n == name).map(|(_, d)| d.clone())
}

/// For the image writer: `(section name, bytes)` of every plugin, section names prefixed with
/// [`SECTION_PREFIX`].
pub fn sections_to_save() -> Vec<(String, Vec<u8>)> {
    lock()
        .saved
        .iter()
        .map(|(n, d)| (format!("{SECTION_PREFIX}{n}"), d.clone()))
        .collect()
}

/// For the restart path: every image section; those named `plugin:<name>` become loadable.
pub fn set_restored_sections<'a>(sections: impl IntoIterator<Item = (&'a str, &'a [u8])>) {
    let list = sections
        .into_iter()
        .filter_map(|(n, d)| {
            n.strip_prefix(SECTION_PREFIX)
                .map(|n| (n.to_string(), d.to_vec()))
        })
        .collect();
    lock().restored = Some(list);
}
