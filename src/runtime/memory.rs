//! ArrayBuffer memory of one isolate: an allocator with a budget.
//!
//! V8 keeps ArrayBuffer contents outside its heap, so `heap_limit_mb` does not bound them.
//! Each isolate gets its own allocator that counts the bytes it hands out against
//! `[runtime] buffer_limit_mb` and refuses (returns null, which V8 turns into a `RangeError`)
//! any allocation past the budget, then calls the budget's `on_exceeded` hook so the runtime
//! can stop the isolate the way it stops one at its heap limit.
//!
//! The V8 allocator interface is a C vtable, so this is the one module of eddy with `unsafe`
//! code (see ARCHITECTURE.md): four `extern "C"` functions and the hand-over of the budget.
#![allow(unsafe_code)]

use std::alloc::Layout;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use deno_core::v8;

/// Alignment of every buffer, as malloc gives (V8 needs at most 8 for typed arrays).
const ALIGN: usize = 16;

/// The bytes an isolate's ArrayBuffers may hold, and what holds them now.
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    on_exceeded: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            on_exceeded: OnceLock::new(),
        })
    }

    /// Sets what to do when an allocation is refused (once; later calls are ignored).
    pub fn on_exceeded(&self, hook: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_exceeded.set(Box::new(hook));
    }

    /// Bytes held by live buffers.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// Takes `len` bytes from the budget, or calls the hook and says no.
    fn reserve(&self, len: usize) -> bool {
        let granted = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(len).filter(|&total| total <= self.limit)
            })
            .is_ok();
        if !granted && let Some(hook) = self.on_exceeded.get() {
            hook();
        }
        granted
    }

    fn release(&self, len: usize) {
        self.used.fetch_sub(len, Ordering::SeqCst);
    }
}

/// An ArrayBuffer allocator for one isolate that allocates within `budget`.
pub fn allocator(budget: Arc<Budget>) -> v8::UniqueRef<v8::Allocator> {
    static VTABLE: v8::RustAllocatorVtable<Budget> = v8::RustAllocatorVtable {
        allocate,
        allocate_uninitialized,
        free,
        drop: drop_budget,
    };
    // SAFETY: the handle is a strong reference made by `Arc::into_raw`; it stays valid until V8
    // calls `drop_budget` once, when the allocator is destroyed, which takes the reference
    // back. `Budget` is `Send + Sync`, as V8 may free buffers on other threads.
    unsafe { v8::new_rust_allocator(Arc::into_raw(budget), &VTABLE) }
}

/// The layout of a buffer of `len` bytes; zero-length requests get one byte so every
/// pointer handed out is a real allocation.
fn layout(len: usize) -> Option<Layout> {
    Layout::from_size_align(len.max(1), ALIGN).ok()
}

fn allocate_with(budget: &Budget, len: usize, zeroed: bool) -> *mut c_void {
    let Some(layout) = layout(len) else {
        return std::ptr::null_mut();
    };
    if !budget.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: `layout` has a non-zero size (see `layout`).
    let data = unsafe {
        if zeroed {
            std::alloc::alloc_zeroed(layout)
        } else {
            std::alloc::alloc(layout)
        }
    };
    if data.is_null() {
        budget.release(len);
    }
    data.cast()
}

unsafe extern "C" fn allocate(budget: &Budget, len: usize) -> *mut c_void {
    allocate_with(budget, len, true)
}

unsafe extern "C" fn allocate_uninitialized(budget: &Budget, len: usize) -> *mut c_void {
    allocate_with(budget, len, false)
}

unsafe extern "C" fn free(budget: &Budget, data: *mut c_void, len: usize) {
    let Some(layout) = layout(len) else { return };
    if data.is_null() {
        return;
    }
    // SAFETY: V8 frees only what this allocator handed out, with the length it asked for, so
    // `data` came from `alloc`/`alloc_zeroed` with this very layout.
    unsafe { std::alloc::dealloc(data.cast(), layout) };
    budget.release(len);
}

unsafe extern "C" fn drop_budget(budget: *const Budget) {
    // SAFETY: `budget` is the pointer `allocator` made with `Arc::into_raw`, and V8 calls this
    // exactly once, when it destroys the allocator.
    drop(unsafe { Arc::from_raw(budget) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn the_budget_refuses_past_its_limit_and_says_so() {
        let budget = Budget::new(100);
        let refused = Arc::new(AtomicBool::new(false));
        let flag = refused.clone();
        budget.on_exceeded(move || flag.store(true, Ordering::SeqCst));
        let a = allocate_with(&budget, 60, true);
        assert!(!a.is_null());
        assert!(allocate_with(&budget, 60, false).is_null());
        assert!(refused.load(Ordering::SeqCst));
        assert_eq!(budget.used(), 60);
        // SAFETY: `a` was allocated above with 60 bytes and is freed once.
        unsafe { free(&budget, a, 60) };
        assert_eq!(budget.used(), 0);
        let b = allocate_with(&budget, 100, false);
        assert!(!b.is_null());
        // SAFETY: as above.
        unsafe { free(&budget, b, 100) };
    }

    #[test]
    fn zero_length_buffers_are_real_allocations() {
        let budget = Budget::new(0);
        let p = allocate_with(&budget, 0, true);
        assert!(!p.is_null());
        // SAFETY: `p` was allocated above with length 0 and is freed once.
        unsafe { free(&budget, p, 0) };
    }
}
