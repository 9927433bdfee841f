//! The writer must not allocate per page: the runtime writes from inside a frozen process with
//! its own allocator. Counts allocations while writing many scattered pages.

mod common;
use common::*;
use dmtcp_image::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn writing_pages_allocates_only_amortized_growth() {
    const PAGES: u64 = 20_000;
    let page = bytes(4096, 1, 1);
    let mut sink = Vec::with_capacity(64 << 20);
    let mut w = ImageWriter::new(&mut sink, &header(), WriterOptions::default()).unwrap();
    let a = w
        .add_region(meta(0x1000_0000, 2 * PAGES, "[heap]"))
        .unwrap();
    let b = w.add_region(meta(0x9000_0000, PAGES, "")).unwrap();
    // Warm up: first frame compressed, lists allocated.
    w.write_data(a, 0, &page).unwrap();
    let before = ALLOCS.load(Ordering::Relaxed);
    // Every other page: each write starts a new run (no coalescing), 20k runs, ~20 frames.
    for p in 1..PAGES {
        w.write_data(a, 2 * p * PAGE, &page).unwrap();
    }
    // Adjacent pages coalesce into one run.
    for p in 0..PAGES {
        w.write_data(b, p * PAGE, &page).unwrap();
    }
    let during = ALLOCS.load(Ordering::Relaxed) - before;
    // Vec doubling of the run and frame lists: about log2(20k) + log2(40) reallocations.
    assert!(
        during < 64,
        "{during} allocations while writing {} pages",
        2 * PAGES
    );
    let (_, stats) = w.finish().unwrap();
    assert_eq!(stats.raw_bytes, 2 * PAGES * PAGE);
    let image = Image::open(&sink[..]).unwrap();
    match &image.regions()[0].storage {
        Storage::Pages(runs) => assert_eq!(runs.len(), PAGES as usize),
        s => panic!("{s:?}"),
    }
    match &image.regions()[1].storage {
        Storage::Pages(runs) => assert_eq!(runs.len(), 1),
        s => panic!("{s:?}"),
    }
}
