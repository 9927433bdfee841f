//! Writes a small sample image (and with `--generation DIR`, a generation directory with a
//! manifest): a usage example of the writer API and input for `dmtcp_inspect`.
//!
//! `cargo run -p dmtcp-image --example write_sample -- OUT.dmtcp`
//! `cargo run -p dmtcp-image --example write_sample -- --generation DIR`

use dmtcp_image::manifest::{Manifest, ManifestEntry};
use dmtcp_image::*;
use std::io::BufWriter;
use std::path::Path;

fn write(path: &Path, pid: i32) -> Result<WriteStats> {
    let mut header = Header::new();
    header.kernel_release = "6.18.0".into();
    header.vdso_fingerprint = vec![0xde, 0xad, 0xbe, 0xef];
    header.process = ProcessIdentity {
        program: "sample".into(),
        pid,
        virtual_pid: pid,
        upid: format!("sample-{pid}"),
        comp_id: "sample-comp".into(),
        generation: 1,
        hostname: "localhost".into(),
        ckpt_time_ns: 1_764_000_000_000_000_000,
        ..Default::default()
    };
    header.entry = 0x3f00_0000_0000;
    header.push_section("threads", vec![0; 64]);

    let file = std::fs::File::create(path).map_err(|e| ImageError::Io {
        context: "creating the image",
        source: e,
    })?;
    let mut w = ImageWriter::new(BufWriter::new(file), &header, WriterOptions::default())?;
    let text = RegionMeta {
        start: 0x40_0000,
        len: 0x2000,
        prot: Prot(Prot::READ | Prot::EXEC),
        path: "/usr/bin/sample".into(),
        inode: 1234,
        ..Default::default()
    };
    let fref = FileRef {
        path: "/usr/bin/sample".into(),
        inode: 1234,
        size: 0x2000,
        mtime_ns: 1,
    };
    w.add_file_region(text, fref)?;
    let heap = w.add_region(RegionMeta {
        start: 0x60_0000,
        len: 64 << 20,
        prot: Prot(Prot::READ | Prot::WRITE),
        flags: RegionFlags(RegionFlags::ANONYMOUS | RegionFlags::HEAP),
        path: "[heap]".into(),
        ..Default::default()
    })?;
    let page: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    for p in (0..4096u64).step_by(3) {
        w.write_data(heap, p * 4096, &page)?;
    }
    w.add_region(RegionMeta {
        start: 0x7ffd_0000_0000,
        len: 0x21000,
        prot: Prot(Prot::READ | Prot::WRITE),
        flags: RegionFlags(RegionFlags::ANONYMOUS | RegionFlags::STACK | RegionFlags::GROWSDOWN),
        path: "[stack]".into(),
        ..Default::default()
    })?;
    Ok(w.finish()?.1)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.as_slice() {
        [flag, dir] if flag == "--generation" => {
            let dir = Path::new(dir);
            std::fs::create_dir_all(dir).expect("create the generation directory");
            let entries: Vec<ManifestEntry> = (0..2)
                .map(|i| {
                    let name = format!("ckpt_sample_{i}.dmtcp");
                    write(&dir.join(&name), 100 + i).map(|s| ManifestEntry::from_stats(name, &s))
                })
                .collect::<Result<_>>()
                .expect("write images");
            Manifest::new("sample-comp", 1, entries)
                .write_atomic(dir)
                .map(|_| ())
                .map_err(|e| ImageError::Io {
                    context: "writing the manifest",
                    source: std::io::Error::other(e),
                })
        }
        [out] => write(Path::new(out), 100).map(|s| println!("{s:?}")),
        _ => {
            eprintln!("usage: write_sample OUT.dmtcp | --generation DIR");
            std::process::exit(2)
        }
    };
    if let Err(e) = res {
        eprintln!("write_sample: {e}");
        std::process::exit(1);
    }
}
