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

    fn cli(path: &Path, json: bool) -> Cli {
        Cli {
            path: path.to_path_buf(),
            json,
            verify: true,
            dump_section: None,
        }
    }

    #[test]
    fn prints_images_and_generations_and_one_line_errors() {
        use dmtcp_image::manifest::ManifestEntry;
        use dmtcp_image::*;
        let dir = std::env::temp_dir().join(format!("dmtcp-inspect-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut h = Header::new();
        h.process.program = "inspected".into();
        h.push_section("core.threads", vec![1; 10]);
        let mut w = ImageWriter::new(Vec::new(), &h, WriterOptions::default()).unwrap();
        let meta = RegionMeta {
            start: 0x10000,
            len: 0x3000,
            path: "[heap]".into(),
            ..Default::default()
        };
        let id = w.add_region(meta).unwrap();
        w.write_data(id, 0x1000, &[7u8; 0x1000]).unwrap();
        let (bytes, stats) = w.finish().unwrap();
        let img = dir.join("p.dmtcp");
        std::fs::write(&img, &bytes).unwrap();

        let text = run(&cli(&img, false)).unwrap();
        assert!(text.contains("process   inspected pid 0"), "{text}");
        assert!(text.contains("0x10000-0x13000"), "{text}");
        assert!(text.contains("core.threads"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&run(&cli(&img, true)).unwrap()).unwrap();
        assert_eq!(json["totals"]["raw_bytes"], 0x1000);

        Manifest::new(
            "comp",
            2,
            vec![ManifestEntry::from_stats("p.dmtcp", &stats)],
        )
        .write_atomic(&dir)
        .unwrap();
        let text = run(&cli(&dir, false)).unwrap();
        assert!(
            text.starts_with("generation 2 of computation comp (1 images"),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&run(&cli(&dir, true)).unwrap()).unwrap();
        assert_eq!(json["images"][0]["process"]["program"], "inspected");

        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n / 2] ^= 0xff;
        std::fs::write(&img, &bad).unwrap();
        let e = run(&cli(&img, false)).unwrap_err();
        assert!(!e.contains('\n') && e.contains("corrupt"), "{e}");
        let e = run(&cli(&dir, false)).unwrap_err();
        assert!(e.contains("checksum mismatch"), "{e}");
        std::fs::write(&img, &bytes[..100]).unwrap();
        let e = run(&cli(&img, false)).unwrap_err();
        assert!(
            e.ends_with("use an older generation") && !e.contains('\n'),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
