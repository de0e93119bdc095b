//! reverse: a Rust reactor implementing the Ferry guest ABI v1 by hand
//! (docs/abi.md), with no SDK. The output is the input's bytes in reverse
//! order.
//!
//! The host calls `ferry_alloc(len)`, writes the input there, then calls
//! `ferry_run(ptr, len)` and reads `out_len` bytes at `out_ptr` from the
//! packed `i64` result. Both buffers are owned by this module and kept alive
//! until the next call, which is exactly as long as the ABI requires.

use std::cell::RefCell;

thread_local! {
    // wasm32-wasi is single-threaded, so a thread-local is a plain static
    // without `static mut` (whose references newer compilers warn about).
    static INPUT: RefCell<Vec<u8>> = RefCell::new(Vec::new());
    static OUTPUT: RefCell<Vec<u8>> = RefCell::new(Vec::new());
}

/// Declares ABI version 1. Its body is never called.
#[no_mangle]
pub extern "C" fn ferry_abi_v1() {}

/// Returns a pointer to `len` writable bytes, or 0 on failure. The buffer is
/// reused, so an instance kept across invocations does not allocate each
/// time.
#[no_mangle]
pub extern "C" fn ferry_alloc(len: i32) -> i32 {
    if len < 0 {
        return 0;
    }
    INPUT.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        // At least one byte of capacity, so that even an empty input gets a
        // real (non-zero, in-memory) pointer.
        buf.resize(len as usize, 0);
        buf.reserve(1);
        buf.as_mut_ptr() as usize as i32
    })
}

/// Reverses the `len` bytes at `ptr` and returns `out_ptr << 32 | out_len`.
#[no_mangle]
pub extern "C" fn ferry_run(ptr: i32, len: i32) -> i64 {
    if len < 0 {
        return 0;
    }
    let input: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: the host wrote `len` bytes at `ptr`, which ferry_alloc
        // returned, and nothing touches that buffer until this call returns.
        unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
    };
    OUTPUT.with(|out| {
        let mut out = out.borrow_mut();
        out.clear();
        out.extend(input.iter().rev());
        // Pointers and lengths are 32-bit; widen through u32 so neither half
        // sign-extends into the other.
        ((out.as_ptr() as usize as u32 as i64) << 32) | (out.len() as u32 as i64)
    })
}
