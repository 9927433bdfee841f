//! The inspection summary reports what was written.

mod common;
use common::*;
use dmtcp_image::inspect::Summary;
use dmtcp_image::*;

#[test]
fn summary_counts_regions_sizes_and_sections() {
    let specs = vec![
        Spec {
            meta: meta(0x10000, 64, "[heap]"),
            runs: vec![(0, bytes(40 * 4096, 1, 1))],
        },
        Spec {
            meta: meta(0x100000, 4, ""),
            runs: vec![],
        },
        Spec {
            meta: meta(0x200000, 8, "[stack]"),
            runs: vec![(4096, bytes(3 * 4096, 2, 2))],
        },
    ];
    let (img, stats) = write_image(&specs, WriterOptions::default());
    let image = Image::open(&img[..]).unwrap();
    let s = Summary::of(&image);
    assert_eq!(s.file_bytes, img.len() as u64);
    assert_eq!(s.process.pid, 4242);
    assert_eq!(s.vdso_fingerprint, "01020304");
    assert_eq!(s.entry, "0x3f0000001000");
    let sections: Vec<(&str, u64)> = s
        .sections
        .iter()
        .map(|x| (x.name.as_str(), x.bytes))
        .collect();
    assert_eq!(sections, vec![("threads", 100), ("fds", 0)]);
    let storage: Vec<&str> = s.regions.iter().map(|r| r.storage).collect();
    assert_eq!(storage, vec!["pages", "zero", "pages"]);
    assert_eq!(s.regions[0].raw_bytes, 40 * 4096);
    assert_eq!(s.regions[2].raw_bytes, 3 * 4096);
    assert_eq!(s.regions[2].start, "0x200000");
    assert_eq!(s.regions[2].prot, "rw-");
    assert_eq!(s.regions[2].flags, vec!["anon"]);
    assert_eq!(s.totals.raw_bytes, stats.raw_bytes);
    assert_eq!(s.totals.stored_bytes, stats.stored_bytes);
    assert_eq!(s.totals.mapped_bytes, 76 * 4096);
    // Per-region stored shares add up to the total (up to rounding).
    let shares: u64 = s.regions.iter().map(|r| r.stored_bytes).sum();
    assert!(
        shares.abs_diff(stats.stored_bytes) <= 2,
        "{shares} vs {}",
        stats.stored_bytes
    );
    // Both regions share one frame: the stack gets 3/43 of its stored size.
    assert_eq!(stats.frames, 1);
    let expect = (stats.stored_bytes as f64 * 3.0 / 43.0).round() as u64;
    assert_eq!(s.regions[2].stored_bytes, expect);
    let ratio = stats.raw_bytes as f64 / stats.stored_bytes as f64;
    assert!((s.totals.compression_ratio - ratio).abs() < 1e-9);

    let text = s.to_string();
    assert!(
        text.contains("process   counter pid 4242 (virtual 40000)"),
        "{text}"
    );
    assert!(text.contains("0x200000-0x208000"), "{text}");
    assert!(text.contains("regions (3):"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
    assert_eq!(json["totals"]["raw_bytes"], stats.raw_bytes);
    assert_eq!(json["regions"][0]["path"], "[heap]");
    assert_eq!(json["process"]["upid"], "abcd-4242-1");
}
