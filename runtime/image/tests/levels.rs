//! zstd levels: images written at any accepted level (the default -1, other negative ones,
//! positive ones) read back byte for byte through every read path, and damage to a frame
//! written at a fast level is still caught before its bytes are used.

mod common;
use common::*;
use dmtcp_image::*;

/// Heap-like frames: compressible text with zero and random pages between.
fn specs() -> Vec<Spec> {
    let mut data = Vec::new();
    for i in 0..64u64 {
        let kind = match i % 8 {
            0 => 0,
            5 => 2,
            _ => 1,
        };
        data.extend(bytes(4096, kind, i));
    }
    vec![Spec {
        meta: meta(0x7f00_0000_0000, 64, "[heap]"),
        runs: vec![(0, data)],
    }]
}

fn opts(level: i32) -> WriterOptions {
    WriterOptions {
        level: Some(level),
        frame_size: 64 << 10,
    }
}

#[test]
fn default_level_is_the_fast_one() {
    assert_eq!(DEFAULT_LEVEL, -1);
    assert_eq!(WriterOptions::default().level, Some(DEFAULT_LEVEL));
}

#[test]
fn every_level_round_trips_through_every_read_path() {
    let specs = specs();
    let expected = specs[0].expected();
    let mut sizes = Vec::new();
    for level in [-7, -5, -3, -1, 1, 3] {
        let (img, stats) = write_image(&specs, opts(level));
        check_image(&img, &specs);
        let image = Image::open(&img[..]).unwrap();
        // 4 frames of 64 KiB, each with compressible pages: all stored as zstd, smaller.
        assert_eq!(image.frames().len(), 4, "level {level}");
        assert!(
            image.frames().iter().all(|f| f.codec == Codec::Zstd),
            "level {level}"
        );
        assert!(
            stats.stored_bytes < stats.raw_bytes / 2,
            "level {level}: {stats:?}"
        );
        let mut dec = FrameDecoder::new().unwrap();
        let mut out = vec![0u8; 64 << 10];
        for k in 0..4 {
            let n = image
                .read_frame_verified_stored(k, &mut out, &mut dec)
                .unwrap();
            assert_eq!(n, 64 << 10);
            assert!(
                out == expected[k * n..(k + 1) * n],
                "level {level} frame {k}"
            );
            out.fill(0);
            image.read_frame_with(k, &mut out, &mut dec).unwrap();
            assert!(
                out == expected[k * n..(k + 1) * n],
                "level {level} frame {k}"
            );
        }
        sizes.push((level, stats.stored_bytes));
    }
    // Among negative levels, a faster one never compresses better on this data.
    let negative: Vec<u64> = sizes
        .iter()
        .filter(|(l, _)| *l < 0)
        .map(|&(_, s)| s)
        .collect();
    assert!(negative.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
}

#[test]
fn damaged_fast_level_frame_is_detected_on_every_path() {
    let specs = specs();
    let (img, _) = write_image(&specs, opts(DEFAULT_LEVEL));
    let image = Image::open(&img[..]).unwrap();
    let f = image.frames()[2];
    assert_eq!(f.codec, Codec::Zstd);
    let mut bad = img.clone();
    bad[(f.offset + u64::from(f.stored_len) / 2) as usize] ^= 0x10;
    let image = Image::open(&bad[..]).unwrap();
    let mut dec = FrameDecoder::new().unwrap();
    let mut out = vec![0u8; 64 << 10];
    for verified_stored in [false, true] {
        let r = if verified_stored {
            image.read_frame_verified_stored(2, &mut out, &mut dec)
        } else {
            image.read_frame_with(2, &mut out, &mut dec)
        };
        match r {
            Err(ImageError::Frame {
                frame: 2,
                check: FrameCheck::Stored,
                ..
            }) => {}
            other => panic!("expected a stored-checksum failure, got {other:?}"),
        }
    }
    // The frames around it still read, and verify_all names the damage.
    image.read_frame_with(1, &mut out, &mut dec).unwrap();
    image.read_frame_with(3, &mut out, &mut dec).unwrap();
    assert!(matches!(
        image.verify_all(),
        Err(ImageError::Frame { frame: 2, .. })
    ));
    // A buffer too small for the frame is refused before anything is read.
    assert!(matches!(
        image.read_frame_verified_stored(1, &mut out[..100], &mut dec),
        Err(ImageError::BufferTooSmall { .. })
    ));
    assert!(matches!(
        image.read_frame_with(9, &mut out, &mut dec),
        Err(ImageError::NoSuchFrame(9))
    ));
}
