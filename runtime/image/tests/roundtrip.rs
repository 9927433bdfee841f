//! Round trips: what is written is read back byte for byte.

mod common;
use common::*;
use dmtcp_image::*;

#[test]
fn empty_image_round_trips() {
    let (img, stats) = write_image(&[], WriterOptions::default());
    assert_eq!(stats.frames, 0);
    assert_eq!(stats.raw_bytes, 0);
    assert_eq!(stats.file_bytes, img.len() as u64);
    assert_eq!(stats.file_xxh3, checksum(&img));
    check_image(&img, &[]);
    assert!(img.starts_with(b"DMTCP-RS IMAGE\n"));
}

#[test]
fn sparse_and_zero_regions() {
    let specs = vec![
        Spec {
            meta: meta(0x10000, 16, "[heap]"),
            runs: vec![(PAGE, bytes(4096, 1, 1)), (5 * PAGE, bytes(3 * 4096, 2, 2))],
        },
        Spec {
            meta: meta(0x40000, 4, ""),
            runs: vec![],
        },
        Spec {
            meta: meta(0x50000, 2, "/lib/x.so"),
            runs: vec![(0, bytes(8192, 1, 3))],
        },
    ];
    let (img, stats) = write_image(&specs, WriterOptions::default());
    assert_eq!(stats.raw_bytes, 4096 + 3 * 4096 + 8192);
    check_image(&img, &specs);
    let image = Image::open(&img[..]).unwrap();
    assert_eq!(image.regions()[1].storage, Storage::Zero);
    match &image.regions()[0].storage {
        Storage::Pages(runs) => assert_eq!(runs.len(), 2),
        s => panic!("unexpected storage {s:?}"),
    }
    // Small regions share one frame, and the frame's pieces name both regions.
    assert_eq!(image.frames().len(), 1);
    let pieces = image.frame_pieces(0).unwrap();
    assert_eq!(pieces.len(), 3);
    assert_eq!(pieces[2].region, RegionId(2));
    assert_eq!(pieces[2].frame_offset, 4 * 4096);
    assert_eq!(image.region_at(0x10000 + 5), Some(RegionId(0)));
    assert_eq!(image.region_at(0x30000), None);
    assert_eq!(image.region_at(0x51fff), Some(RegionId(2)));
}

#[test]
fn adjacent_writes_coalesce_into_one_run() {
    let mut w = ImageWriter::new(Vec::new(), &header(), WriterOptions::default()).unwrap();
    let id = w.add_region(meta(0x1000, 8, "[stack]")).unwrap();
    for p in 0..8u64 {
        w.write_data(id, p * PAGE, &bytes(4096, 1, p)).unwrap();
    }
    let (img, _) = w.finish().unwrap();
    let image = Image::open(img).unwrap();
    assert_eq!(
        image.regions()[0].storage,
        Storage::Pages(vec![Run {
            offset: 0,
            len: 8 * PAGE,
            stream_offset: 0
        }])
    );
}

#[test]
fn many_regions() {
    let specs: Vec<Spec> = (0..500u64)
        .map(|i| Spec {
            meta: meta(0x100000 + i * 3 * PAGE, 2, &format!("/lib/lib{i}.so")),
            runs: if i % 3 == 0 {
                vec![]
            } else {
                vec![(PAGE * (i % 2), bytes(4096, (i % 3) as u8, i))]
            },
        })
        .collect();
    let (img, _) = write_image(&specs, WriterOptions::default());
    check_image(&img, &specs);
}

#[test]
fn raw_and_compressed_frames() {
    let specs = vec![
        Spec {
            meta: meta(0x100000, 256, "a"),
            runs: vec![(0, bytes(256 * 4096, 1, 5))],
        },
        Spec {
            meta: meta(0x400000, 256, "b"),
            runs: vec![(0, bytes(256 * 4096, 2, 6))],
        },
    ];
    let opts = WriterOptions {
        level: Some(3),
        frame_size: 64 << 10,
    };
    let (img, stats) = write_image(&specs, opts);
    check_image(&img, &specs);
    let image = Image::open(&img[..]).unwrap();
    let codecs: Vec<Codec> = image.frames().iter().map(|f| f.codec).collect();
    assert_eq!(codecs.len(), 32);
    assert!(codecs[..16].iter().all(|c| *c == Codec::Zstd));
    assert!(codecs[16..].iter().all(|c| *c == Codec::Raw));
    assert!(stats.stored_bytes < stats.raw_bytes);

    let (raw_img, raw_stats) = write_image(
        &specs,
        WriterOptions {
            level: None,
            frame_size: 64 << 10,
        },
    );
    check_image(&raw_img, &specs);
    assert_eq!(raw_stats.stored_bytes, raw_stats.raw_bytes);
}

/// Writes with every size around the 4 MiB frame edge and checks frame sizes and content.
#[test]
fn frame_boundaries_at_4mib_edges() {
    const F: u64 = 4 << 20;
    for pages in [F / PAGE - 1, F / PAGE, F / PAGE + 1, 2 * F / PAGE] {
        // Two writes whose sum crosses the edge, plus an odd-sized tail run.
        let total = (pages * PAGE) as usize;
        let data = bytes(total, 1, pages);
        let spec = Spec {
            meta: meta(0x10_0000_0000, pages + 1, "[heap]"),
            runs: vec![
                (0, data[..total / 3].to_vec()),
                (total as u64 / 3, data[total / 3..].to_vec()),
                (pages * PAGE, vec![7; 100]),
            ],
        };
        let (img, stats) = write_image(std::slice::from_ref(&spec), WriterOptions::default());
        let raw = total as u64 + 100;
        assert_eq!(stats.raw_bytes, raw);
        assert_eq!(stats.frames as u64, raw.div_ceil(F));
        let image = Image::open(&img[..]).unwrap();
        for (i, f) in image.frames().iter().enumerate() {
            let expect = if (i as u64 + 1) * F <= raw {
                F
            } else {
                raw - i as u64 * F
            };
            assert_eq!(u64::from(f.raw_len), expect, "frame {i} of {pages} pages");
            assert_eq!(f.region_offset, i as u64 * F);
        }
        check_image(&img, std::slice::from_ref(&spec));
    }
}

/// The low-level path: frames compressed elsewhere, appended in order.
#[test]
fn parallel_encoded_frames_append_in_order() {
    let data = bytes(3 << 20, 1, 9);
    let raw = bytes(1 << 20, 2, 10);
    let mut w = ImageWriter::new(Vec::new(), &header(), WriterOptions::default()).unwrap();
    let a = w.add_region(meta(0x200000, 2048, "[heap]")).unwrap();
    w.add_run(a, 0, data.len() as u64).unwrap();
    w.add_run(a, 2 << 20 << 1, raw.len() as u64).unwrap();
    let encoded: Vec<EncodedFrame> = std::thread::scope(|s| {
        let chunks: Vec<&[u8]> = data.chunks(1 << 20).chain([&raw[..]]).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| s.spawn(move || compress_frame(c, Some(1)).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for f in &encoded {
        w.append_frame(f).unwrap();
    }
    let (img, stats) = w.finish().unwrap();
    assert_eq!(stats.frames, 4);
    let spec = Spec {
        meta: meta(0x200000, 2048, "[heap]"),
        runs: vec![(0, data), (4 << 20, raw)],
    };
    check_image(&img, &[spec]);
}

#[test]
fn writer_refuses_misuse() {
    let mut w = ImageWriter::new(Vec::new(), &header(), WriterOptions::default()).unwrap();
    assert!(w.add_region(meta(0x1001, 1, "")).is_err());
    let a = w.add_region(meta(0x10000, 2, "")).unwrap();
    assert!(w.add_region(meta(0x10000, 1, "")).is_err(), "overlap");
    assert!(w.write_data(a, PAGE, &[0; 8193]).is_err(), "past the end");
    w.write_data(a, PAGE, &[1; 10]).unwrap();
    assert!(w.write_data(a, 0, &[1; 10]).is_err(), "descending run");
    w.add_run(a, PAGE + 100, 50).unwrap();
    assert!(
        w.write_data(a, PAGE + 200, &[1; 10]).is_err(),
        "run declared without frame"
    );
    // The declared run was never supplied.
    assert!(matches!(w.finish(), Err(ImageError::Misuse(_))));
}

#[test]
fn file_backed_regions_store_nothing() {
    let mut w = ImageWriter::new(Vec::new(), &header(), WriterOptions::default()).unwrap();
    let fref = FileRef {
        path: "/usr/lib/libc.so.6".into(),
        inode: 77,
        size: 1 << 20,
        mtime_ns: 5,
    };
    let id = w
        .add_file_region(meta(0x7000_0000, 4, "/usr/lib/libc.so.6"), fref.clone())
        .unwrap();
    assert!(w.write_data(id, 0, &[1; 4096]).is_err());
    let (img, stats) = w.finish().unwrap();
    assert_eq!(stats.raw_bytes, 0);
    let image = Image::open(img).unwrap();
    assert_eq!(image.regions()[0].storage, Storage::File(fref));
    assert!(
        image
            .read_region_into(RegionId(0), &mut vec![0; 4 * 4096])
            .is_err()
    );
}

#[test]
fn seek_source_and_file_source_agree() {
    let spec = Spec {
        meta: meta(0x10000, 4, "x"),
        runs: vec![(0, bytes(16384, 1, 4))],
    };
    let (img, _) = write_image(std::slice::from_ref(&spec), WriterOptions::default());
    let seek = Image::open(SeekSource::new(std::io::Cursor::new(img.clone()))).unwrap();
    seek.verify_all().unwrap();
    let path = std::env::temp_dir().join(format!("dmtcp-image-test-{}.img", std::process::id()));
    std::fs::write(&path, &img).unwrap();
    let file = Image::open_path(&path).unwrap();
    let mut out = vec![0; 16384];
    file.read_region_into(RegionId(0), &mut out).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out, spec.expected());
    assert_eq!(read_header(&img).unwrap(), header());
}

/// 64 MiB of mixed content (zeros, text, random, in 1 MiB stripes) in one region.
#[test]
fn round_trip_64_mib_mixed() {
    const MIB: usize = 1 << 20;
    let mut data = Vec::with_capacity(64 * MIB);
    for i in 0..64 {
        data.extend_from_slice(&bytes(MIB, (i % 3) as u8, i as u64));
    }
    let spec = Spec {
        meta: meta(0x7f00_0000_0000, 64 * 256, "[heap]"),
        runs: vec![(0, data)],
    };
    let (img, stats) = write_image(std::slice::from_ref(&spec), WriterOptions::default());
    assert_eq!(stats.raw_bytes, 64 * MIB as u64);
    assert_eq!(stats.frames, 16);
    assert!(stats.stored_bytes < stats.raw_bytes * 2 / 3, "{stats:?}");
    check_image(&img, std::slice::from_ref(&spec));
}

#[test]
fn locate_finds_the_frame_of_any_saved_byte() {
    let specs = vec![
        Spec {
            meta: meta(0x10000, 8, "a"),
            runs: vec![(100, bytes(5000, 2, 1)), (3 * PAGE, bytes(9000, 2, 2))],
        },
        Spec {
            meta: meta(0x40000, 4, "b"),
            runs: vec![(PAGE, bytes(4096, 2, 3))],
        },
    ];
    let (img, _) = write_image(
        &specs,
        WriterOptions {
            level: Some(1),
            frame_size: 4096,
        },
    );
    let image = Image::open(&img[..]).unwrap();
    let frames: Vec<Vec<u8>> = (0..image.frames().len())
        .map(|i| {
            let mut b = vec![0; 4096];
            let n = image.read_frame_into(i, &mut b).unwrap();
            b.truncate(n);
            b
        })
        .collect();
    for (ri, s) in specs.iter().enumerate() {
        let expected = s.expected();
        for off in 0..s.meta.len {
            let saved = s
                .runs
                .iter()
                .any(|(o, b)| *o <= off && off < o + b.len() as u64);
            match image.locate(RegionId(ri as u32), off) {
                Some((f, fo)) => {
                    assert!(saved, "region {ri} +{off} located but not saved");
                    assert_eq!(frames[f][fo as usize], expected[off as usize]);
                }
                None => assert!(!saved, "region {ri} +{off} saved but not located"),
            }
        }
    }
    assert_eq!(image.locate(RegionId(9), 0), None);
}

#[test]
fn parallel_decode_matches_sequential_and_reports_damage() {
    let spec = Spec {
        meta: meta(0x10000, 64, "a"),
        runs: vec![(0, bytes(64 * 4096, 1, 1))],
    };
    let (img, _) = write_image(
        std::slice::from_ref(&spec),
        WriterOptions {
            level: Some(1),
            frame_size: 8192,
        },
    );
    let image = Image::open(&img[..]).unwrap();
    let out = std::sync::Mutex::new(vec![0u8; 64 * 4096]);
    image
        .decode_parallel(3, |i, raw| {
            for p in image.frame_pieces(i)? {
                let dst = p.region_offset as usize;
                out.lock().unwrap()[dst..dst + p.len as usize]
                    .copy_from_slice(&raw[p.frame_offset as usize..][..p.len as usize]);
            }
            Ok(())
        })
        .unwrap();
    assert!(out.into_inner().unwrap() == spec.expected());

    let mut bad = img.clone();
    let f = image.frames()[20];
    bad[f.offset as usize + 1] ^= 1;
    let image = Image::open(&bad[..]).unwrap();
    let e = image.decode_parallel(2, |_, _| Ok(())).unwrap_err();
    assert!(matches!(e, ImageError::Frame { frame: 20, .. }), "{e}");
    let e = image.decode_parallel(2, |i, _| {
        if i == 3 {
            Err(ImageError::NoSuchFrame(99))
        } else {
            Ok(())
        }
    });
    assert!(e.is_err());
}

#[test]
fn buffers_prepared_ahead_serve_several_images() {
    let bufs = WriterBuffers::new(WriterOptions {
        level: Some(1),
        frame_size: 8192,
    })
    .unwrap();
    let a = Spec {
        meta: meta(0x10000, 5, "a"),
        runs: vec![(0, bytes(5 * 4096 - 7, 1, 1))],
    };
    let b = Spec {
        meta: meta(0x90000, 3, "b"),
        runs: vec![(4096, bytes(2 * 4096, 2, 2))],
    };
    let mut bufs = Some(bufs);
    for spec in [&a, &b, &a] {
        let mut w = ImageWriter::with_buffers(Vec::new(), &header(), bufs.take().unwrap()).unwrap();
        let id = w.add_region(spec.meta.clone()).unwrap();
        for (off, data) in &spec.runs {
            w.write_data(id, *off, data).unwrap();
        }
        let (img, stats, back) = w.finish_keep_buffers().unwrap();
        assert_eq!(
            stats.raw_bytes,
            spec.runs.iter().map(|r| r.1.len() as u64).sum::<u64>()
        );
        check_image(&img, std::slice::from_ref(spec));
        bufs = Some(back);
    }
    assert!(
        WriterBuffers::new(WriterOptions {
            level: None,
            frame_size: 100
        })
        .is_err()
    );
}
