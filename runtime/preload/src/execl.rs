//! The list forms of exec: `execl`, `execlp`, `execle`. glibc implements them with its internal
//! `execve`, which the exec wrapper never sees, so a program using them would leave its
//! identity behind at the exec (it would rejoin as a new process). They are C variadic
//! functions, which stable Rust cannot define, and a C shim would not be exported from the
//! cdylib; so each is a tiny naked x86-64 entry that spills the register arguments next to the
//! stack ones and hands both to [`list_exec`], which collects the list and calls the vector
//! form (our wrapper). On other architectures the list forms are not wrapped (documented in
//! docs/unsupported.md).

use libc::{c_char, c_int};

unsafe extern "C" {
    static environ: *const *const c_char;
}

const FORM_L: usize = 0;
const FORM_LP: usize = 1;
const FORM_LE: usize = 2;

/// The arguments after `path`: the five passed in registers (`regs`), then those on the
/// caller's stack (`stack`), per the System V x86-64 calling convention for variadics.
///
/// # Safety
/// Called only from the entries below, with the pointers they compute; the caller of `execl`
/// passed a NULL-terminated list (and, for `execle`, an environment after the NULL).
unsafe extern "C" fn list_exec(
    path: *const c_char,
    regs: *const *const c_char,
    stack: *const *const c_char,
    form: usize,
) -> c_int {
    let nth = |i: usize| -> *const c_char {
        // SAFETY: the caller's list is NULL-terminated, so we never read past its end.
        unsafe {
            if i < 5 {
                *regs.add(i)
            } else {
                *stack.add(i - 5)
            }
        }
    };
    let mut argv: Vec<*const c_char> = Vec::new();
    loop {
        let a = nth(argv.len());
        argv.push(a);
        if a.is_null() {
            break;
        }
    }
    // SAFETY: forwarding to the vector forms (our wrappers) with a NULL-terminated argv.
    unsafe {
        match form {
            FORM_LP => crate::exec::execvp(path, argv.as_ptr()),
            FORM_LE => crate::exec::execve(path, argv.as_ptr(), nth(argv.len()).cast()),
            _ => crate::exec::execve(path, argv.as_ptr(), environ),
        }
    }
}

/// Spills rsi, rdx, rcx, r8, r9 (arguments 1..=5) below the return address so that they and
/// the stack arguments can be walked, calls `list_exec`, and returns its result.
macro_rules! list_entry {
    ($name:ident, $form:expr) => {
        /// # Safety
        /// Same contract as the C library function of this name.
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                "push r9",
                "push r8",
                "push rcx",
                "push rdx",
                "push rsi",
                // rsp now points at the five spilled arguments (and is 16-byte aligned);
                // the return address follows them, then the stack arguments.
                "mov rsi, rsp",
                "lea rdx, [rsp + 48]",
                "mov ecx, {form}",
                "call {f}",
                "add rsp, 40",
                "ret",
                form = const $form,
                f = sym list_exec,
            )
        }
    };
}

list_entry!(execl, FORM_L);
list_entry!(execlp, FORM_LP);
list_entry!(execle, FORM_LE);
