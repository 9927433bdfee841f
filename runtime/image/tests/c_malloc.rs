//! After warm-up, encoding frames calls no C `malloc`: zstd's context must be fully allocated
//! before the checkpoint freezes threads (a frozen thread may hold malloc's lock).
//!
//! This test binary interposes `malloc`/`calloc`/`realloc` (forwarding to glibc's `__libc_*`)
//! and counts calls made by the test thread while the counter is armed.

use dmtcp_image::{EncodedFrame, FrameEncoder, MAX_FRAME_RAW};
use std::cell::Cell;
use std::ffi::c_void;

thread_local! {
    // Const-initialized without destructor: reading it never allocates.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static CALLS: Cell<usize> = const { Cell::new(0) };
}

unsafe extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void;
}

fn note() {
    if ARMED.with(Cell::get) {
        CALLS.with(|c| c.set(c.get() + 1));
    }
}

/// # Safety
/// Same contract as C `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    note();
    // SAFETY: glibc's implementation with the caller's arguments.
    unsafe { __libc_malloc(size) }
}

/// # Safety
/// Same contract as C `calloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    note();
    // SAFETY: glibc's implementation with the caller's arguments.
    unsafe { __libc_calloc(n, size) }
}

/// # Safety
/// Same contract as C `realloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    note();
    // SAFETY: glibc's implementation with the caller's arguments.
    unsafe { __libc_realloc(p, size) }
}

fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    CALLS.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, CALLS.with(Cell::get))
}

#[test]
fn encoding_after_warm_up_does_not_malloc() {
    // The counter sees this thread's allocations: prove it does.
    let (v, n) = counted(|| vec![1u8; 100]);
    assert!(
        n >= 1 && v.len() == 100,
        "interposition does not work ({n} calls)"
    );

    let inputs: Vec<Vec<u8>> = (0..6u64)
        .map(|k| {
            let len = if k == 5 { 12_345 } else { MAX_FRAME_RAW };
            (0..len)
                .map(|i| ((i as u64 * (k + 3)) % 251 + (i as u64 >> 12) * k) as u8)
                .collect()
        })
        .collect();
    for level in [1, 3] {
        let mut enc = FrameEncoder::new(Some(level)).unwrap();
        let mut out = EncodedFrame::with_capacity(MAX_FRAME_RAW);
        let (res, calls) = counted(|| {
            for raw in inputs.iter().chain(inputs.iter().rev()) {
                enc.encode_into(raw, &mut out)?;
            }
            Ok::<_, dmtcp_image::ImageError>(())
        });
        res.unwrap();
        assert_eq!(
            calls, 0,
            "level {level}: {calls} malloc calls while encoding"
        );
    }
}
