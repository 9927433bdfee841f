//! Measures writer and reader throughput on heap-like data held in memory.
//!
//! `cargo run --release -p dmtcp-image --example throughput -- [MiB] [level|raw]`

use dmtcp_image::*;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(512);
    let level = match args.get(1).map(String::as_str) {
        Some("raw") => None,
        Some(l) => Some(l.parse().expect("zstd level")),
        None => Some(1),
    };
    // Heap-like: runs of small integers, pointers and zeros.
    let mut data = vec![0u8; mib << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for (i, chunk) in data.chunks_mut(8).enumerate() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = match i % 8 {
            0..=2 => 0,
            3 | 4 => x % 1000,
            5 => 0x5555_0000_0000 + (x % 4096) * 16,
            _ => x,
        };
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    let mut header = Header::new();
    header.process.program = "throughput".into();
    // Second passes are measured: the first one pays the page faults of fresh buffers.
    let mut sink = Vec::with_capacity(data.len() + (16 << 20));
    let mut out = vec![0u8; data.len()];
    let (mut wt, mut rt, mut pt, mut ratio) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..2 {
        sink.clear();
        let t = Instant::now();
        let opts = WriterOptions {
            level,
            ..Default::default()
        };
        let mut w = ImageWriter::new(&mut sink, &header, opts).expect("writer");
        let r = w
            .add_region(RegionMeta {
                start: 0x1000_0000,
                len: data.len() as u64,
                prot: Prot(Prot::READ | Prot::WRITE),
                ..Default::default()
            })
            .expect("region");
        for (i, page) in data.chunks(4096).enumerate() {
            w.write_data(r, (i * 4096) as u64, page).expect("write");
        }
        let (_, stats) = w.finish().expect("finish");
        wt = t.elapsed().as_secs_f64();
        ratio = stats.raw_bytes as f64 / stats.stored_bytes as f64;
        let t = Instant::now();
        let image = Image::open(&sink[..]).expect("open");
        image.read_region_into(RegionId(0), &mut out).expect("read");
        rt = t.elapsed().as_secs_f64();
        assert!(out == data, "round trip differs");
        let t = Instant::now();
        image.decode_parallel(2, |_, _| Ok(())).expect("decode");
        pt = t.elapsed().as_secs_f64();
    }
    let gb = data.len() as f64 / 1e9;
    println!(
        "{mib} MiB level {level:?}: ratio {:.2}, write {:.2} GB/s, read {:.2} GB/s, \
         parallel verify (2 threads) {:.2} GB/s",
        ratio,
        gb / wt,
        gb / rt,
        gb / pt
    );
}
