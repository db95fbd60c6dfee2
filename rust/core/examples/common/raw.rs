//! The raw-array reader the development probes share: a corpus dumped as `d_indptr` (u64),
//! `d_indices` (u32), `d_values` (f32) and the same `q_*` for queries.

/// The numbers in file `p`, native byte order; panics naming the file when its length is not a
/// whole number of values.
pub fn read<T: Copy + Default>(p: &str) -> Vec<T> {
    let b = std::fs::read(p).unwrap();
    let size = std::mem::size_of::<T>();
    assert_eq!(b.len() % size, 0, "{p}: {} bytes is not a whole number of {size}-byte values", b.len());
    let mut v = vec![T::default(); b.len() / size];
    // SAFETY: `v` holds exactly `b.len()` bytes (checked above), and the callers read plain
    // numbers (u32 / u64 / f32), for which any bytes are a valid value.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), v.as_mut_ptr() as *mut u8, b.len()) };
    v
}
