//! `dmtcp_inspect`: prints a checkpoint image (or a generation directory with its manifest) as
//! text or JSON. Any damage is one line on stderr and exit status 1.

use clap::Parser;
use dmtcp_cli::{die, init_logging};
use dmtcp_image::inspect::Summary;
use dmtcp_image::manifest::{MANIFEST_FILE, Manifest};
use dmtcp_image::{Image, ImageError};
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "dmtcp_inspect",
    version,
    about = "Print a checkpoint image or generation"
)]
struct Cli {
    /// An image file, or a generation directory holding MANIFEST.json.
    path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also decode every frame (and checksum every image of a generation).
    #[arg(long)]
    verify: bool,
    /// Write the raw bytes of header section NAME of an image to stdout (for debugging).
    #[arg(long, value_name = "NAME", conflicts_with = "json")]
    dump_section: Option<String>,
}

fn open(path: &Path, verify: bool) -> Result<Summary, String> {
    let name = path.display();
    let image = Image::open_path(path).map_err(|e| match e {
        ImageError::Io { source, .. } => format!("{name}: {source}"),
        e => format!("{name}: {e}"),
    })?;
    if verify {
        image.verify_all().map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(Summary::of(&image))
}

fn run(cli: &Cli) -> Result<String, String> {
    if !cli.path.is_dir() {
        let s = open(&cli.path, cli.verify)?;
        return Ok(if cli.json { s.to_json() } else { s.to_string() });
    }
    let manifest = Manifest::read(&cli.path).map_err(|e| e.to_string())?;
    manifest
        .verify_files(&cli.path, cli.verify)
        .map_err(|e| e.to_string())?;
    let images = manifest
        .images
        .iter()
        .map(|e| open(&cli.path.join(&e.file), cli.verify))
        .collect::<Result<Vec<_>, _>>()?;
    if cli.json {
        let v = serde_json::json!({ "manifest": manifest, "images": images });
        return Ok(serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    let mut out = format!(
        "generation {} of computation {} ({} images, {MANIFEST_FILE} created {})\n",
        manifest.generation,
        manifest.comp_id,
        manifest.images.len(),
        dmtcp_image::inspect::utc_time(manifest.created_ns)
    );
    for (e, s) in manifest.images.iter().zip(images) {
        out.push_str(&format!("\n== {} ({})\n{s}\n", e.file, e.checksum));
    }
    Ok(out.trim_end().to_string())
}

fn dump_section(path: &Path, name: &str) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let header = dmtcp_image::read_header(&f).map_err(|e| format!("{}: {e}", path.display()))?;
    let data = header.section(name).ok_or_else(|| {
        let names: Vec<&str> = header.sections.iter().map(|s| s.name.as_str()).collect();
        format!(
            "{}: no section {name:?} (sections: {})",
            path.display(),
            names.join(", ")
        )
    })?;
    let _ = std::io::stdout().lock().write_all(data);
    Ok(())
}

fn main() {
    init_logging(false);
    let cli = Cli::parse();
    if let Some(name) = &cli.dump_section {
        if let Err(msg) = dump_section(&cli.path, name) {
            die(1, msg);
        }
        return;
    }
    match run(&cli) {
        Ok(text) => {
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
        Err(msg) => die(1, msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
