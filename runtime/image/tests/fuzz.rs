//! Property tests: damaged, truncated, random and adversarial-but-checksummed inputs never
//! panic the reader, and an undamaged image always reads back exactly.

mod common;
use common::*;
use dmtcp_image::format::{PRELUDE_LEN, Prelude, TRAILER_LEN, Trailer};
use dmtcp_image::*;
use proptest::prelude::*;
use std::sync::OnceLock;

struct Sample {
    img: Vec<u8>,
    specs: Vec<Spec>,
}

fn sample() -> &'static Sample {
    static S: OnceLock<Sample> = OnceLock::new();
    S.get_or_init(|| {
        let specs = vec![
            Spec {
                meta: meta(0x10000, 6, "[heap]"),
                runs: vec![(0, bytes(9000, 1, 1)), (3 * PAGE, bytes(5000, 2, 2))],
            },
            Spec {
                meta: meta(0x20000, 2, ""),
                runs: vec![],
            },
            Spec {
                meta: meta(0x30000, 3, "[stack]"),
                runs: vec![(PAGE, bytes(8192, 1, 3))],
            },
        ];
        let opts = WriterOptions {
            level: Some(1),
            frame_size: 4096,
        };
        Sample {
            img: write_image(&specs, opts).0,
            specs,
        }
    })
}

/// Exercises every read path of a (possibly hostile) image; returns the region contents when
/// everything succeeded.
fn read_everything(img: &[u8]) -> Option<Vec<Vec<u8>>> {
    let _ = read_header(&img);
    let image = Image::open(img).ok()?;
    for i in 0..image.frames().len() {
        let _ = image.frame_pieces(i);
    }
    let verified = image.verify_all().is_ok();
    let mut contents = Vec::new();
    let mut all_ok = verified;
    for (i, r) in image.regions().iter().enumerate() {
        if r.meta.len > 64 << 20 {
            all_ok = false;
            continue;
        }
        let mut buf = vec![0u8; r.meta.len as usize];
        all_ok &= image.read_region_into(RegionId(i as u32), &mut buf).is_ok();
        contents.push(buf);
    }
    let _ = dmtcp_image::inspect::Summary::of(&image);
    all_ok.then_some(contents)
}

/// Rebuilds an image from (possibly altered) parts with every checksum and offset made
/// consistent, so the semantic validators, not the checksums, must catch the damage.
fn reassemble(header: &[u8], data: &[u8], table: &[u8], index: &[u8]) -> Vec<u8> {
    let prelude = Prelude {
        version: FORMAT_VERSION,
        header_len: header.len() as u32,
        header_xxh3: checksum(header),
    };
    let mut v = prelude.encode().to_vec();
    v.extend_from_slice(header);
    let data_offset = v.len() as u64;
    v.extend_from_slice(data);
    let table_offset = v.len() as u64;
    v.extend_from_slice(table);
    let index_offset = v.len() as u64;
    v.extend_from_slice(index);
    let t = Trailer {
        version: FORMAT_VERSION,
        data_offset,
        data_len: data.len() as u64,
        table_offset,
        table_len: table.len() as u64,
        table_xxh3: checksum(table),
        index_offset,
        index_len: index.len() as u64,
        index_xxh3: checksum(index),
        file_len: index_offset + index.len() as u64 + TRAILER_LEN as u64,
    };
    v.extend_from_slice(&t.encode());
    v
}

struct Parts {
    header: Vec<u8>,
    data: Vec<u8>,
    regions: Vec<Region>,
    frames: Vec<FrameEntry>,
}

fn parts() -> Parts {
    let img = &sample().img;
    let image = Image::open(&img[..]).unwrap();
    let t = *image.trailer();
    Parts {
        header: img[PRELUDE_LEN..t.data_offset as usize].to_vec(),
        data: img[t.data_offset as usize..t.table_offset as usize].to_vec(),
        regions: image.regions().to_vec(),
        frames: image.frames().to_vec(),
    }
}

fn interesting() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(4096),
        Just(4 << 20),
        Just((4 << 20) + 1),
        Just(u64::MAX),
        Just(u64::MAX - 4095),
        Just(u32::MAX as u64),
        0u64..100_000,
        any::<u64>(),
    ]
}

fn mutate_regions(regions: &mut [Region], which: usize, field: u8, v: u64) {
    if regions.is_empty() {
        return;
    }
    let n = regions.len();
    let r = &mut regions[which % n];
    match field % 6 {
        0 => r.meta.start = v,
        1 => r.meta.len = v,
        2..=4 => {
            if let Storage::Pages(runs) = &mut r.storage
                && !runs.is_empty()
            {
                let k = (v as usize) % runs.len();
                match field % 6 {
                    2 => runs[k].offset = v,
                    3 => runs[k].len = v,
                    _ => runs[k].stream_offset = v,
                }
            }
        }
        _ => {
            r.storage = if v.is_multiple_of(2) {
                Storage::Zero
            } else {
                Storage::Pages(vec![])
            }
        }
    }
}

fn mutate_frames(frames: &mut Vec<FrameEntry>, which: usize, field: u8, v: u64) {
    if frames.is_empty() {
        return;
    }
    let n = frames.len();
    let f = &mut frames[which % n];
    match field % 9 {
        0 => f.offset = v,
        1 => f.stored_len = v as u32,
        2 => f.raw_len = v as u32,
        3 => {
            f.codec = match v % 3 {
                0 => Codec::Raw,
                1 => Codec::Zstd,
                // A reference frame (in a version 1 image, or naming no parent): refused.
                _ => Codec::Ref {
                    parent: (v >> 8) as u32 % 3,
                    frame: (v >> 16) as u32,
                },
            }
        }
        4 => f.region = v as u32,
        5 => f.region_offset = v,
        6 => f.raw_xxh3 = v,
        7 => {
            frames.remove(which % n);
        }
        _ => frames.swap(which % n, (v as usize) % n),
    }
}

proptest! {
    // PROPTEST_CASES=100000 for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048), magic in any::<bool>()) {
        let mut data = data;
        if magic && data.len() >= PRELUDE_LEN {
            data[..15].copy_from_slice(b"DMTCP-RS IMAGE\n");
            data[15..19].copy_from_slice(&1u32.to_le_bytes());
        }
        prop_assert!(read_everything(&data).is_none());
    }

    #[test]
    fn flipped_bytes_are_caught_or_harmless(flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4)) {
        let s = sample();
        let mut img = s.img.clone();
        for (at, x) in &flips {
            let n = img.len();
            img[at % n] ^= x;
        }
        if let Some(contents) = read_everything(&img) {
            let expected: Vec<Vec<u8>> = s.specs.iter().map(Spec::expected).collect();
            prop_assert_eq!(contents, expected);
        }
    }

    #[test]
    fn truncated_images_are_refused(cut in 0usize..100_000) {
        let img = &sample().img;
        let cut = cut % img.len();
        prop_assert!(Image::open(&img[..cut]).is_err());
    }

    #[test]
    fn checksummed_semantic_damage_never_panics(
        target in 0u8..2, which in any::<usize>(), field in any::<u8>(), v in interesting(),
    ) {
        let mut p = parts();
        if target == 0 {
            mutate_regions(&mut p.regions, which, field, v);
        } else {
            mutate_frames(&mut p.frames, which, field, v);
        }
        let table = postcard::to_stdvec(&p.regions).unwrap();
        let index = postcard::to_stdvec(&p.frames).unwrap();
        let img = reassemble(&p.header, &p.data, &table, &index);
        let _ = read_everything(&img);
    }

    #[test]
    fn checksummed_byte_damage_never_panics(
        part in 0u8..3, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(), do_cut in any::<bool>(),
    ) {
        let p = parts();
        let mut bufs = [
            p.header.clone(),
            postcard::to_stdvec(&p.regions).unwrap(),
            postcard::to_stdvec(&p.frames).unwrap(),
        ];
        let b = &mut bufs[part as usize];
        for (at, x) in flips {
            let n = b.len();
            b[at % n] = x;
        }
        if do_cut {
            let n = b.len();
            b.truncate(cut % n);
        }
        let img = reassemble(&bufs[0], &p.data, &bufs[1], &bufs[2]);
        let _ = read_everything(&img);
    }

    #[test]
    fn any_written_image_round_trips(
        regions in proptest::collection::vec((1u64..6, 0u64..4, proptest::collection::vec((0u64..3, 1usize..5000, 0u8..3), 0..4)), 0..6),
        level in prop_oneof![Just(None), Just(Some(1)), Just(Some(5))],
        frame_pages in 1usize..4,
    ) {
        let mut specs = Vec::new();
        let mut addr = 0x100000u64;
        for (i, (pages, gap, runs)) in regions.into_iter().enumerate() {
            let mut off = 0u64;
            let mut rs = Vec::new();
            for (skip, len, kind) in runs {
                let start = off + skip * 1000;
                let len = (len as u64).min(pages * PAGE - start.min(pages * PAGE)) as usize;
                if len == 0 { break; }
                rs.push((start, bytes(len, kind, i as u64 * 31 + start)));
                off = start + len as u64;
            }
            specs.push(Spec { meta: meta(addr, pages, "r"), runs: rs });
            addr += (pages + gap) * PAGE;
        }
        let (img, stats) = write_image(&specs, WriterOptions { level, frame_size: frame_pages * 4096 });
        prop_assert_eq!(stats.file_bytes, img.len() as u64);
        let contents = read_everything(&img).expect("a freshly written image reads back");
        let expected: Vec<Vec<u8>> = specs.iter().map(Spec::expected).collect();
        prop_assert_eq!(contents, expected);
    }
}
