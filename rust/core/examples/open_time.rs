//! Time opening segment files: `cargo run --release --example open_time -- FILE... [reps]`.
//!
//! Each file is opened `reps` times (default 20) with every check a reader makes (checksums of
//! every section, every doc-id block decoded and checked, the dense block maxima derived); the
//! median, minimum and maximum are printed, with the time of the checksums alone
//! (`Container::parse`) for comparison.

use sparsedex_core::container::{Container, Image};
use sparsedex_core::index::format::MAGIC;
use sparsedex_core::index::Index;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reps: usize = args.last().and_then(|a| a.parse().ok()).unwrap_or(20);
    for path in args.iter().filter(|a| a.parse::<usize>().is_err()) {
        let p = std::path::Path::new(path);
        let time = |f: &dyn Fn()| {
            let mut t: Vec<f64> = (0..reps)
                .map(|_| {
                    let s = Instant::now();
                    f();
                    s.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            t.sort_by(f64::total_cmp);
            (t[t.len() / 2], t[0], t[t.len() - 1])
        };
        let (med, lo, hi) = time(&|| drop(Index::open(p).unwrap()));
        let b = std::fs::read(p).unwrap();
        let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
        let (cmed, _, _) =
            time(&|| drop(Container::parse(Image::open_file(p).unwrap(), MAGIC, version, true).unwrap()));
        let st = Index::open(p).unwrap().stats();
        println!(
            "{path}: version {version}, {:.1} MB, open median {med:.1} ms (min {lo:.1}, max {hi:.1}; checksums alone {cmed:.1}), \
             postings {:.2} MB, derived in memory {:.2} MB",
            b.len() as f64 / 1e6,
            st.postings_bytes as f64 / 1e6,
            st.derived_bytes as f64 / 1e6
        );
    }
}
