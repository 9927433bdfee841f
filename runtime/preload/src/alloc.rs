//! The runtime's own heap, over private anonymous mappings.
//!
//! Rust code in the runtime must never call the program's malloc: a frozen thread may hold its
//! lock, and a checkpoint would deadlock. Small blocks come from power-of-two size classes
//! carved from 1 MiB chunks; large ones are mapped directly. One spin lock guards the lists;
//! it is taken around `fork` so the child never inherits it held.

use crate::raw_lock::RawLock;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

const MIN_CLASS: usize = 4; // 16 bytes
const MAX_CLASS: usize = 16; // 64 KiB
const CHUNK: usize = 1 << 20;
const PAGE: usize = 4096;

struct Lists {
    free: [*mut u8; MAX_CLASS + 1],
    bump: *mut u8,
    bump_end: *mut u8,
    /// Large blocks freed while `deferring` (see `defer_unmaps`).
    deferred: *mut u8,
    deferring: bool,
}

pub struct RuntimeHeap {
    lock: RawLock,
    lists: UnsafeCell<Lists>,
}

// SAFETY: every access to `lists` happens with `lock` held.
unsafe impl Sync for RuntimeHeap {}

impl RuntimeHeap {
    pub const fn new() -> Self {
        RuntimeHeap {
            lock: RawLock::new(),
            lists: UnsafeCell::new(Lists {
                free: [ptr::null_mut(); MAX_CLASS + 1],
                bump: ptr::null_mut(),
                bump_end: ptr::null_mut(),
                deferred: ptr::null_mut(),
                deferring: false,
            }),
        }
    }

    /// Held across `fork` (see `fork.rs`) so the child gets a consistent heap.
    pub fn lock(&self) {
        self.lock.lock();
    }

    pub fn unlock(&self) {
        self.lock.unlock();
    }

    /// While a checkpoint writes memory, large blocks freed are kept mapped until the write
    /// ends: a region listed in the memory map must not vanish before it is saved.
    pub fn defer_unmaps(&self, on: bool) {
        self.lock.lock();
        // SAFETY: the lock is held.
        let lists = unsafe { &mut *self.lists.get() };
        lists.deferring = on;
        let mut p = if on {
            ptr::null_mut()
        } else {
            core::mem::replace(&mut lists.deferred, ptr::null_mut())
        };
        self.lock.unlock();
        while !p.is_null() {
            // SAFETY: deferred blocks hold (next, len) in their first two words.
            let (next, len) = unsafe { (*(p as *mut *mut u8), *(p as *mut usize).add(1)) };
            // SAFETY: the block is a whole mapping of `len` bytes that nobody uses.
            unsafe { libc::munmap(p.cast(), len) };
            p = next;
        }
    }

    /// After a restart: the lists were saved while the checkpoint wrote memory, and may point
    /// into blocks mapped after the memory map was read (so never restored). Start afresh;
    /// the saved free blocks are simply not reused.
    pub fn forget_free_lists(&self) {
        // SAFETY: the restart entry runs before any other thread exists.
        let lists = unsafe { &mut *self.lists.get() };
        lists.free = [ptr::null_mut(); MAX_CLASS + 1];
        lists.bump = ptr::null_mut();
        lists.bump_end = ptr::null_mut();
        lists.deferred = ptr::null_mut();
        lists.deferring = false;
        self.lock.force_unlock();
    }

    /// In the child after `fork`: the lock word was copied held by the forking thread.
    pub fn reset_lock_in_child(&self) {
        self.lock.force_unlock();
    }
}

fn class_of(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_CLASS);
    let class = size.next_power_of_two().trailing_zeros() as usize;
    // Blocks of a class are aligned to min(class size, page): enough for align <= page.
    (class <= MAX_CLASS && layout.align() <= PAGE).then_some(class)
}

fn map(len: usize) -> *mut u8 {
    // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

fn large_len(layout: &Layout) -> usize {
    (layout.size() + PAGE - 1) & !(PAGE - 1)
}

unsafe impl GlobalAlloc for RuntimeHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(&layout) else {
            if layout.align() > PAGE {
                return ptr::null_mut();
            }
            return map(large_len(&layout));
        };
        let size = 1usize << class;
        self.lock.lock();
        // SAFETY: the lock is held.
        let lists = unsafe { &mut *self.lists.get() };
        let head = lists.free[class];
        let out = if !head.is_null() {
            // SAFETY: free blocks store the next pointer in their first word.
            lists.free[class] = unsafe { *(head as *mut *mut u8) };
            head
        } else {
            let aligned =
                ((lists.bump as usize + size.min(PAGE) - 1) & !(size.min(PAGE) - 1)) as *mut u8;
            if lists.bump.is_null() || aligned as usize + size > lists.bump_end as usize {
                let chunk = map(CHUNK);
                if chunk.is_null() {
                    self.lock.unlock();
                    return ptr::null_mut();
                }
                lists.bump = chunk;
                // SAFETY: within the fresh chunk.
                lists.bump_end = unsafe { chunk.add(CHUNK) };
                let p = chunk;
                // SAFETY: size <= 64 KiB < CHUNK.
                lists.bump = unsafe { p.add(size) };
                p
            } else {
                // SAFETY: checked against bump_end above.
                lists.bump = unsafe { aligned.add(size) };
                aligned
            }
        };
        self.lock.unlock();
        out
    }

    /// Large blocks are fresh mappings, zero already: the default (alloc, then write zeros)
    /// would fault in every page (`vec![0u8; 4 MiB]` cost ~2 ms of the checkpoint's pause).
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { self.alloc(layout) };
        if !p.is_null() && class_of(&layout).is_some() {
            // SAFETY: `alloc` returned a block of `layout.size()` writable bytes.
            unsafe { ptr::write_bytes(p, 0, layout.size()) };
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let Some(class) = class_of(&layout) else {
            self.lock.lock();
            // SAFETY: the lock is held.
            let lists = unsafe { &mut *self.lists.get() };
            if lists.deferring {
                // SAFETY: a large block is at least a page: room for (next, len).
                unsafe {
                    *(p as *mut *mut u8) = lists.deferred;
                    *(p as *mut usize).add(1) = large_len(&layout);
                }
                lists.deferred = p;
                self.lock.unlock();
                return;
            }
            self.lock.unlock();
            // SAFETY: large blocks are whole mappings of this length.
            unsafe { libc::munmap(p.cast(), large_len(&layout)) };
            return;
        };
        self.lock.lock();
        // SAFETY: the lock is held; the block is at least 16 bytes, enough for a pointer.
        unsafe {
            let lists = &mut *self.lists.get();
            *(p as *mut *mut u8) = lists.free[class];
            lists.free[class] = p;
        }
        self.lock.unlock();
    }
}
