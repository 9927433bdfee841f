//! Helpers shared by the image tests: deterministic data and a reference model of regions.
#![allow(dead_code)]

use dmtcp_image::*;

pub const PAGE: u64 = 4096;

/// Deterministic bytes: `kind` 0 = zeros, 1 = text-like (compressible), 2 = random.
pub fn bytes(len: usize, kind: u8, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Whole words and slices, not bytes: debug builds are slow per byte.
    let mut v = Vec::with_capacity(len + 64);
    match kind {
        0 => v.resize(len, 0),
        1 => {
            const TEXT: &[u8] = b"checkpoint restart heap 0123 checkpoint restart stack 4567 ";
            while v.len() < len {
                let r = next();
                v.extend_from_slice(&TEXT[(r % 7) as usize..]);
                v.extend_from_slice(&r.to_le_bytes()[..2]);
            }
        }
        _ => {
            while v.len() < len {
                v.extend_from_slice(&next().to_le_bytes());
            }
        }
    }
    v.truncate(len);
    v
}

pub fn header() -> Header {
    let mut h = Header::new();
    h.kernel_release = "6.18.0-test".into();
    h.vdso_fingerprint = vec![1, 2, 3, 4];
    h.rseq = Some(RseqLayout {
        size: 20,
        offset: 2336,
    });
    h.process = ProcessIdentity {
        program: "counter".into(),
        pid: 4242,
        ppid: 1,
        pgid: 4242,
        sid: 4242,
        virtual_pid: 40000,
        upid: "abcd-4242-1".into(),
        comp_id: "comp-1".into(),
        generation: 3,
        hostname: "node1".into(),
        uid: 1000,
        gid: 1000,
        ckpt_time_ns: 1_700_000_000_000_000_000,
    };
    h.entry = 0x3f00_0000_1000;
    h.push_section("threads", vec![9; 100]);
    h.push_section("fds", Vec::new());
    h
}

pub fn meta(start: u64, pages: u64, path: &str) -> RegionMeta {
    RegionMeta {
        start,
        len: pages * PAGE,
        prot: Prot(Prot::READ | Prot::WRITE),
        flags: RegionFlags(RegionFlags::ANONYMOUS),
        path: path.into(),
        ..Default::default()
    }
}

/// A region to write: its metadata and the (offset, bytes) runs to save.
pub struct Spec {
    pub meta: RegionMeta,
    pub runs: Vec<(u64, Vec<u8>)>,
}

impl Spec {
    /// The content a reader must produce: zeros with the runs filled in.
    pub fn expected(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.meta.len as usize];
        for (off, b) in &self.runs {
            v[*off as usize..*off as usize + b.len()].copy_from_slice(b);
        }
        v
    }
}

pub fn write_image(specs: &[Spec], opts: WriterOptions) -> (Vec<u8>, WriteStats) {
    let mut w = ImageWriter::new(Vec::new(), &header(), opts).unwrap();
    let ids: Vec<RegionId> = specs
        .iter()
        .map(|s| w.add_region(s.meta.clone()).unwrap())
        .collect();
    for (s, id) in specs.iter().zip(&ids) {
        for (off, b) in &s.runs {
            w.write_data(*id, *off, b).unwrap();
        }
    }
    w.finish().unwrap()
}

/// Opens `img`, verifies it and checks every region's content against `specs`.
pub fn check_image(img: &[u8], specs: &[Spec]) {
    let image = Image::open(img).unwrap();
    assert_eq!(image.header(), &header());
    image.verify_all().unwrap();
    assert_eq!(image.regions().len(), specs.len());
    for (i, s) in specs.iter().enumerate() {
        let r = &image.regions()[i];
        assert_eq!(r.meta, s.meta);
        let mut out = vec![0xAAu8; s.meta.len as usize];
        image
            .read_region_into(RegionId(i as u32), &mut out)
            .unwrap();
        assert!(out == s.expected(), "region {i} content differs");
    }
}
