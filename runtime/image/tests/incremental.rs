//! Incremental images: reference frames into parent images, flattened chains, and the errors a
//! missing, replaced or inconsistent parent gives.

mod common;

use common::{PAGE, bytes, header};
use dmtcp_image::chain::encode_parents;
use dmtcp_image::inspect::Summary;
use dmtcp_image::*;
use std::path::{Path, PathBuf};

const BASE: u64 = 0x7f00_0000_0000;
/// 6 MiB region: six delta frames.
const LEN: u64 = 6 << 20;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dmtcp-incr-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes generation `generation` of a one-region process holding `mem` into `dir/file`,
/// referring to `prev` (a file in `dir`) when given. Returns the delta stats.
fn write_gen(
    dir: &Path,
    file: &str,
    generation: u64,
    mem: &[u8],
    prev: Option<&str>,
) -> DeltaStats {
    let basis = prev.map(|p| {
        let img = Image::open_path(&dir.join(p)).unwrap();
        Basis::from_previous(&img, p)
    });
    let mut h = header();
    h.process.generation = generation;
    if let Some(b) = &basis {
        h.push_section(PARENTS_SECTION, encode_parents(b.parents()));
    }
    let mut sink = Vec::new();
    let mut w = ImageWriter::new(&mut sink, &h, WriterOptions::default()).unwrap();
    let id = w.add_region(common::meta(BASE, LEN / PAGE, "")).unwrap();
    let mut d = DeltaWriter::new(basis, Some(1)).unwrap();
    // Two runs, the second not frame-aligned, to cut frames at run ends too.
    d.write(&mut w, id, BASE, 0, &mem[..(2 << 20) + 4096])
        .unwrap();
    d.write(&mut w, id, BASE, (2 << 20) + 4096, &mem[(2 << 20) + 4096..])
        .unwrap();
    w.finish().unwrap();
    std::fs::write(dir.join(file), &sink).unwrap();
    d.stats
}

fn read_all(path: &Path) -> Vec<u8> {
    let img = Image::open_path(path).unwrap();
    let mut out = vec![0u8; LEN as usize];
    img.read_region_into(RegionId(0), &mut out).unwrap();
    img.verify_all().unwrap();
    out
}

#[test]
fn chain_of_three_generations_reads_back_and_stays_small() {
    let dir = tmpdir("chain");
    let mut mem = bytes(LEN as usize, 2, 1);
    let s1 = write_gen(&dir, "g1", 1, &mem, None);
    assert_eq!((s1.ref_frames, s1.new_bytes), (0, LEN));
    // Change 5 % of the memory, inside the fourth megabyte.
    mem[(3 << 20) + 100..(3 << 20) + 100 + 300_000].fill(0xab);
    let s2 = write_gen(&dir, "g2", 2, &mem, Some("g1"));
    assert_eq!(s2.new_frames, 1, "{s2:?}");
    assert_eq!(s2.new_bytes, 1 << 20);
    // Change the first megabyte: generation 3 refers to generation 1 (bytes unchanged since)
    // and 2 (the frame changed in 2) directly, never through 2's references.
    mem[10..20].fill(7);
    let s3 = write_gen(&dir, "g3", 3, &mem, Some("g2"));
    assert_eq!(s3.new_frames, 1, "{s3:?}");
    let g1 = std::fs::metadata(dir.join("g1")).unwrap().len();
    let g3 = std::fs::metadata(dir.join("g3")).unwrap().len();
    assert!(g3 * 4 < g1, "{g3} vs {g1}");

    assert_eq!(read_all(&dir.join("g3")), mem);
    let img = Image::open_path(&dir.join("g3")).unwrap();
    let gens: Vec<u64> = img.parents().iter().map(|p| p.generation).collect();
    assert_eq!(gens, vec![2, 1]);
    assert_eq!(img.header().process.generation, 3);
    assert_eq!(img.trailer().version, 2);
    for f in img.frames() {
        if let Codec::Ref { parent, frame } = f.codec {
            let target = img.parent_images()[parent as usize].frames()[frame as usize];
            assert!(
                !matches!(target.codec, Codec::Ref { .. }),
                "references are flat"
            );
        }
    }
    let s = Summary::of(&img);
    assert_eq!(s.totals.ref_frames, 6);
    assert_eq!(s.totals.ref_bytes, 5 << 20);
    let text = s.to_string();
    assert!(
        text.contains("chain     incremental: 5.0 MiB in 6 frames"),
        "{text}"
    );
    assert!(text.contains("generation 1     g1  5 frames"), "{text}");
    // A full image is version 1, readable by older tools.
    assert_eq!(
        Image::open_path(&dir.join("g1")).unwrap().trailer().version,
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_or_replaced_parent_is_named_before_any_frame_is_read() {
    let dir = tmpdir("missing");
    let mut mem = bytes(LEN as usize, 1, 2);
    write_gen(&dir, "g1", 1, &mem, None);
    mem[0] = 1;
    write_gen(&dir, "g2", 2, &mem, Some("g1"));
    let g1 = std::fs::read(dir.join("g1")).unwrap();

    std::fs::remove_file(dir.join("g1")).unwrap();
    let e = Image::open_path(&dir.join("g2")).err().unwrap().to_string();
    assert!(
        e.starts_with(&format!(
            "parent image {}/g1 (generation 1) is missing",
            dir.display()
        )),
        "{e}"
    );

    // Another image under the parent's name.
    let other = bytes(LEN as usize, 1, 3);
    write_gen(&dir, "g1", 1, &other, None);
    let e = Image::open_path(&dir.join("g2")).err().unwrap().to_string();
    assert!(
        e.contains("is not the image this one was written against"),
        "{e}"
    );

    // The parent damaged in a referenced frame: its own checksum catches it on read.
    let mut bad = g1.clone();
    let img = Image::open(&g1[..]).unwrap();
    let f = img.frames()[5];
    bad[f.offset as usize + 3] ^= 0x40;
    std::fs::write(dir.join("g1"), &bad).unwrap();
    let img = Image::open_path(&dir.join("g2")).unwrap();
    let e = img.verify_all().unwrap_err();
    assert!(matches!(e, ImageError::Frame { frame: 5, .. }), "{e}");

    // Opened without its directory, a reference frame says what is missing.
    let bytes2 = std::fs::read(dir.join("g2")).unwrap();
    let img = Image::open(&bytes2[..]).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let e = img.read_frame_into(5, &mut buf).unwrap_err().to_string();
    assert!(e.contains("g1 (generation 1) is not attached"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Rewrites the frame index of `img` (keeping the image otherwise valid).
fn with_frames(
    img: &[u8],
    edit: impl FnOnce(&mut Vec<FrameEntry>),
    version: Option<u32>,
) -> Vec<u8> {
    use dmtcp_image::format::{TRAILER_LEN, Trailer};
    let n = img.len();
    let mut t = Trailer::decode(img[n - TRAILER_LEN..].try_into().unwrap(), n as u64).unwrap();
    let mut frames: Vec<FrameEntry> = postcard::from_bytes(
        &img[t.index_offset as usize..(t.index_offset + t.index_len) as usize],
    )
    .unwrap();
    edit(&mut frames);
    let index = postcard::to_stdvec(&frames).unwrap();
    let mut out = img[..t.index_offset as usize].to_vec();
    out.extend_from_slice(&index);
    t.index_len = index.len() as u64;
    t.index_xxh3 = checksum(&index);
    t.file_len = (out.len() + TRAILER_LEN) as u64;
    if let Some(v) = version {
        t.version = v;
        let m = dmtcp_image::format::MAGIC.len();
        out[m..m + 4].copy_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&t.encode());
    out
}

#[test]
fn malformed_references_are_refused_on_open() {
    let dir = tmpdir("malformed");
    let mut mem = bytes(LEN as usize, 2, 4);
    write_gen(&dir, "g1", 1, &mem, None);
    mem[0] ^= 1;
    write_gen(&dir, "g2", 2, &mem, Some("g1"));
    let g2 = std::fs::read(dir.join("g2")).unwrap();
    let ref_at = |frames: &Vec<FrameEntry>| {
        frames
            .iter()
            .position(|f| matches!(f.codec, Codec::Ref { .. }))
            .unwrap()
    };
    // An undeclared parent.
    let bad = with_frames(
        &g2,
        |fs| {
            let i = ref_at(fs);
            fs[i].codec = Codec::Ref {
                parent: 9,
                frame: 0,
            };
        },
        None,
    );
    let e = Image::open(&bad[..]).err().unwrap().to_string();
    assert!(
        e.contains("refers to parent 9, which is not declared"),
        "{e}"
    );
    // A reference that stores bytes.
    let bad = with_frames(
        &g2,
        |fs| {
            let i = ref_at(fs);
            fs[i].stored_xxh3 = 1;
        },
        None,
    );
    let e = Image::open(&bad[..]).err().unwrap().to_string();
    assert!(e.contains("does not fit its codec"), "{e}");
    // A reference in a version 1 image.
    let bad = with_frames(&g2, |_| {}, Some(1));
    let e = Image::open(&bad[..]).err().unwrap().to_string();
    assert!(
        e.contains("is a reference in a format version 1 image"),
        "{e}"
    );
    // A reference whose checksum the parent's frame does not have.
    let bad = with_frames(
        &g2,
        |fs| {
            let i = ref_at(fs);
            fs[i].raw_xxh3 ^= 1;
        },
        None,
    );
    std::fs::write(dir.join("bad"), &bad).unwrap();
    let e = Image::open_path(&dir.join("bad"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("does not hold frame 1 as frame 1 of this image expects"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
