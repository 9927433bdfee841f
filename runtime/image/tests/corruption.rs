//! Damage detection: a flipped byte in each part and truncation at each boundary give the
//! specific error for that part.

mod common;
use common::*;
use dmtcp_image::format::{PRELUDE_LEN, TRAILER_LEN};
use dmtcp_image::*;

fn sample() -> (Vec<u8>, Vec<Spec>) {
    let specs = vec![
        Spec {
            meta: meta(0x10000, 300, "[heap]"),
            runs: vec![(0, bytes(300 * 4096, 1, 1))],
        },
        Spec {
            meta: meta(0x200000, 8, "[stack]"),
            runs: vec![(4096, bytes(4096, 2, 2))],
        },
    ];
    let opts = WriterOptions {
        level: Some(1),
        frame_size: 256 << 10,
    };
    (write_image(&specs, opts).0, specs)
}

fn flipped(img: &[u8], at: u64) -> Vec<u8> {
    let mut v = img.to_vec();
    v[at as usize] ^= 0x40;
    v
}

fn open_and_verify(img: &[u8]) -> Result<()> {
    Image::open(img)?.verify_all().map(|_| ())
}

#[test]
fn flipped_bytes_name_the_damaged_part() {
    let (img, _) = sample();
    let t = *Image::open(&img[..]).unwrap().trailer();
    let len = img.len() as u64;

    let e = open_and_verify(&flipped(&img, 0)).unwrap_err();
    assert!(matches!(e, ImageError::NotAnImage));
    assert_eq!(e.to_string(), "not a checkpoint image (bad magic)");

    let e = open_and_verify(&flipped(&img, 15)).unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::TooNew {
                found: 0x41,
                supported: 2
            }
        ),
        "{e}"
    );

    let e = open_and_verify(&flipped(&img, PRELUDE_LEN as u64 + 3)).unwrap_err();
    assert!(
        matches!(e, ImageError::Checksum { part: Part::Header }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "header checksum mismatch: the image is corrupt; restart from an older generation"
    );

    // Data: the image opens (metadata is intact) and the damaged frame is named on read.
    let f1 = Image::open(&img[..]).unwrap().frames()[1];
    let at = f1.offset + u64::from(f1.stored_len) / 2;
    let bad = flipped(&img, at);
    let image = Image::open(&bad[..]).unwrap();
    let frame = image
        .frames()
        .iter()
        .position(|f| f.offset <= at && at < f.offset + u64::from(f.stored_len))
        .unwrap();
    let e = image.verify_all().unwrap_err();
    match &e {
        ImageError::Frame {
            frame: f,
            check: FrameCheck::Stored,
            location,
        } => {
            assert_eq!(*f, frame);
            assert!(location.contains("[heap]"), "{location}");
        }
        e => panic!("unexpected {e}"),
    }
    assert!(
        e.to_string().starts_with(&format!(
            "frame {frame} (region 0x10000-0x13c000 [heap] +0x"
        )),
        "{e}"
    );
    let mut buf = vec![0; MAX_FRAME_RAW];
    assert!(image.read_frame_into(frame, &mut buf).is_err());
    assert!(
        image.read_frame_into(frame + 1, &mut buf).is_ok(),
        "other frames stay readable"
    );

    let e = open_and_verify(&flipped(&img, t.table_offset + 2)).unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::Checksum {
                part: Part::RegionTable
            }
        ),
        "{e}"
    );

    let e = open_and_verify(&flipped(&img, t.index_offset + 5)).unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::Checksum {
                part: Part::FrameIndex
            }
        ),
        "{e}"
    );

    let e = open_and_verify(&flipped(&img, len - TRAILER_LEN as u64)).unwrap_err();
    assert!(matches!(e, ImageError::Incomplete { .. }), "{e}");
    for at in [len - 50, len - 1] {
        let e = open_and_verify(&flipped(&img, at)).unwrap_err();
        assert!(
            matches!(
                e,
                ImageError::Checksum {
                    part: Part::Trailer
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn every_single_byte_flip_is_detected() {
    let (img, _) = sample();
    // Every byte of the metadata, and a stride through the data.
    let t = *Image::open(&img[..]).unwrap().trailer();
    let positions = (0..t.data_offset + 64)
        .chain((t.data_offset..t.table_offset).step_by(997))
        .chain(t.table_offset..img.len() as u64);
    for at in positions {
        assert!(
            open_and_verify(&flipped(&img, at)).is_err(),
            "flip at {at} went unnoticed"
        );
    }
}

#[test]
fn truncation_at_every_boundary_is_reported() {
    let (img, _) = sample();
    let t = *Image::open(&img[..]).unwrap().trailer();
    let len = img.len() as u64;
    let cuts = [
        0,
        5,
        PRELUDE_LEN as u64 - 1,
        PRELUDE_LEN as u64,
        t.data_offset,
        t.data_offset + 1,
        t.table_offset - 1,
        t.table_offset,
        t.index_offset,
        t.index_offset + 1,
        len - TRAILER_LEN as u64,
        len - 1,
    ];
    for cut in cuts {
        let e = open_and_verify(&img[..cut as usize]).unwrap_err();
        assert!(
            matches!(e, ImageError::Incomplete { found } if found == cut),
            "cut {cut}: {e}"
        );
        assert!(
            e.to_string()
                .contains("the checkpoint was interrupted; use an older generation")
        );
    }
    // A hole in the middle (trailer intact) gives the expected and found sizes.
    let mut holed = img[..t.data_offset as usize + 10].to_vec();
    holed.extend_from_slice(&img[t.data_offset as usize + 1010..]);
    let e = open_and_verify(&holed).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "image is truncated (expected {len} bytes, found {}): the checkpoint was interrupted; use an older generation",
            len - 1000
        )
    );
    // Garbage after the trailer hides it.
    let mut longer = img.clone();
    longer.extend_from_slice(b"junk");
    assert!(matches!(
        open_and_verify(&longer),
        Err(ImageError::Incomplete { .. })
    ));
}

#[test]
fn header_only_reading_survives_damage_elsewhere() {
    let (img, _) = sample();
    let t = *Image::open(&img[..]).unwrap().trailer();
    let cut = &img[..t.data_offset as usize + 100];
    assert_eq!(read_header(&cut).unwrap(), header());
    assert!(matches!(
        read_header(&&img[..PRELUDE_LEN + 3]),
        Err(ImageError::Incomplete { .. })
    ));
}
