//! The next definition of a wrapped symbol (glibc's), resolved once and cached.

/// Resolves `$name` with `dlsym(RTLD_NEXT)` into a function pointer of the expected type.
/// Aborts with a clear line if glibc lacks the symbol (it never does for the ones we wrap).
#[macro_export]
macro_rules! real_fn {
    ($name:literal) => {{
        static CACHE: ::core::sync::atomic::AtomicUsize = ::core::sync::atomic::AtomicUsize::new(0);
        let mut p = CACHE.load(::core::sync::atomic::Ordering::Relaxed);
        if p == 0 {
            // SAFETY: dlsym with a static NUL-terminated name.
            p = unsafe { ::libc::dlsym(::libc::RTLD_NEXT, concat!($name, "\0").as_ptr().cast()) }
                as usize;
            if p == 0 {
                $crate::error!("cannot resolve {}", $name);
                // SAFETY: nothing sensible can continue without the real function.
                unsafe { ::libc::abort() };
            }
            CACHE.store(p, ::core::sync::atomic::Ordering::Relaxed);
        }
        // SAFETY: the symbol has the C signature the caller names.
        unsafe { ::core::mem::transmute::<usize, _>(p) }
    }};
}
