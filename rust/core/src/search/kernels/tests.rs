//! Every SIMD kernel against its scalar twin, on random input.

use super::*;

fn rng(seed: &mut u64) -> u64 {
    crate::synth::xorshift64(seed)
}

#[test]
fn accumulate_kernels_match_scalar() {
    let mut seed = 0x9e3779b97f4a7c15u64;
    for case in 0..300 {
        let n_acc = 1 + (rng(&mut seed) % 5000) as usize;
        let len = (rng(&mut seed) % 129) as usize;
        // distinct ids, some out of range in a few cases
        let mut ids: Vec<u32> = (0..n_acc as u32 + if case % 7 == 0 { 40 } else { 0 }).collect();
        for i in (1..ids.len()).rev() {
            let j = (rng(&mut seed) % (i as u64 + 1)) as usize;
            ids.swap(i, j);
        }
        ids.truncate(len);
        let imps: Vec<u8> = (0..ids.len()).map(|_| rng(&mut seed) as u8).collect();
        let w = (rng(&mut seed) % 70_000) as u32;
        let init: Vec<u32> = (0..n_acc).map(|_| (rng(&mut seed) % 1_000_000) as u32).collect();
        let mut want = init.clone();
        accumulate_u32_scalar(&mut want, &ids, &imps, w);
        for isa in available() {
            let mut got = init.clone();
            accumulate_u32(isa, &mut got, &ids, &imps, w);
            assert_eq!(got, want, "{isa:?} case {case}");
        }
    }
}

/// The builder's quantizer (f64 add + truncation) equals `f32::round` then clamp, on edge
/// cases and on random weights and scales.
#[test]
fn quantize_matches_round() {
    let reference = |w: f32, s: f32| (w * s).round().clamp(1.0, 255.0) as u8;
    let q = crate::index::build::quantize;
    let edges = [
        0.0f32,
        1e-30,
        0.49999997,
        0.5,
        0.50000006,
        1.4999999,
        1.5,
        2.5,
        127.5,
        254.5,
        254.49998,
        255.0,
        255.49998,
        255.5,
        256.0,
        1e9,
        f32::MAX,
        f32::INFINITY,
    ];
    for &y in &edges {
        assert_eq!(q(y, 1.0), reference(y, 1.0), "y = {y}");
    }
    let mut seed = 11u64;
    for _ in 0..200_000 {
        let w = f32::from_bits((rng(&mut seed) % 0x4380_0000) as u32); // [0, 256)
        let s = 1.0 + (rng(&mut seed) % 1000) as f32 / 7.0;
        assert_eq!(q(w, s), reference(w, s), "w = {w}, scale = {s}");
        assert_eq!(q(w, 1.0), reference(w, 1.0), "w = {w}");
    }
}

#[test]
fn row_kernels_match_scalar() {
    let mut seed = 99u64;
    for case in 0..500 {
        let nt = 1 + (rng(&mut seed) % 400) as usize;
        let wtab: Vec<u32> = (0..nt)
            .map(|_| if rng(&mut seed).is_multiple_of(3) { (rng(&mut seed) % 70_000) as u32 } else { 0 })
            .collect();
        let len = (rng(&mut seed) % 200) as usize;
        let terms: Vec<u32> = (0..len).map(|_| (rng(&mut seed) % (nt as u64 + 3)) as u32).collect();
        let values: Vec<f32> = (0..len)
            .map(|_| match rng(&mut seed) % 4 {
                0 => (rng(&mut seed) % 512) as f32 / 2.0, // ties at .5
                1 => f32::from_bits((rng(&mut seed) % 0x4380_0000) as u32),
                2 => 1e-9,
                _ => (rng(&mut seed) % 10_000) as f32 / 997.0,
            })
            .collect();
        let scale = [1.0f32, 0.7, 3.3, 90.0][case % 4];
        let want = score_row_u8_scalar(&terms, &values, scale, &wtab);
        // The same row with 16-bit term ids (the stored vectors of a segment of at most
        // 65,536 terms): ids here are below 403, so they are the same ids.
        let terms16: Vec<u16> = terms.iter().map(|&t| t as u16).collect();
        assert_eq!(score_row_u8_scalar(&terms16, &values, scale, &wtab), want, "u16 scalar case {case}");
        for isa in available() {
            assert_eq!(score_row_u8(isa, &terms, &values, scale, &wtab), want, "{isa:?} case {case}");
            assert_eq!(score_row_u8(isa, &terms16, &values, scale, &wtab), want, "{isa:?} u16 case {case}");
        }
    }
}

#[test]
fn add_scaled_kernels_match_scalar() {
    let mut seed = 5u64;
    for case in 0..200 {
        let n = (rng(&mut seed) % 300) as usize;
        let dense: Vec<u8> = (0..n).map(|_| rng(&mut seed) as u8).collect();
        let init: Vec<u32> = (0..n).map(|_| (rng(&mut seed) % 100_000) as u32).collect();
        let w = (rng(&mut seed) % 70_000) as u32;
        let mut want = init.clone();
        add_scaled_u32_scalar(&mut want, &dense, w);
        for isa in available() {
            let mut got = init.clone();
            add_scaled_u32(isa, &mut got, &dense, w);
            assert_eq!(got, want, "{isa:?} case {case}");
        }
    }
}

#[test]
fn the_measured_pick_is_an_available_set() {
    let sets = available();
    let times = measure(&sets);
    assert_eq!(times.len(), sets.len());
    assert!(times.iter().all(|t| t.is_finite() && *t > 0.0), "{times:?}");
    let pick = fastest();
    assert!(sets.contains(&pick));
    assert_eq!(fastest(), pick, "measured once per process");
    force(None);
    assert_eq!(isa(), pick);
}

#[test]
fn drain_kernels_match_scalar() {
    let mut seed = 77u64;
    for case in 0..300 {
        let n = (rng(&mut seed) % 3000) as usize;
        // every third case over the whole u32 range (the unsigned compare's edge: values
        // and thresholds with the top bit set)
        let wide = case % 3 == 0;
        let acc: Vec<u32> = (0..n)
            .map(|_| match (rng(&mut seed) % 5, wide) {
                (0, false) => (rng(&mut seed) % 1000) as u32,
                (0, true) => rng(&mut seed) as u32,
                (1, true) => u32::MAX - (rng(&mut seed) % 3) as u32,
                _ => 0,
            })
            .collect();
        let thr0 =
            if wide { [0, 1 << 31, (1 << 31) - 1, u32::MAX - 1][case / 3 % 4] } else { (rng(&mut seed) % 50) as u32 };
        let run = |isa: Isa| {
            let mut a = acc.clone();
            let mut got = Vec::new();
            // a collector whose threshold rises with every entry
            let mut thr = thr0;
            drain_above_u32(isa, &mut a, thr0, |d, s| {
                got.push((d, s));
                thr = thr.max(s / 2);
                thr
            });
            assert!(a.iter().all(|&x| x == 0), "{isa:?} left accumulators dirty");
            got
        };
        let want = run(Isa::SCALAR);
        for isa in available() {
            assert_eq!(run(isa), want, "{isa:?} case {case}");
        }
    }
}

/// The 16-bit drains against the scalar loop: values with the top bit set (the unsigned
/// compare's edge), thresholds at and above `u16::MAX` (nothing passes), a rising threshold.
#[test]
fn drain_u16_kernels_match_scalar() {
    let mut seed = 78u64;
    for case in 0..300 {
        let n = (rng(&mut seed) % 3000) as usize;
        let wide = case % 3 == 0;
        let acc: Vec<u16> = (0..n)
            .map(|_| match (rng(&mut seed) % 5, wide) {
                (0, false) => (rng(&mut seed) % 1000) as u16,
                (0, true) => rng(&mut seed) as u16,
                (1, true) => u16::MAX - (rng(&mut seed) % 3) as u16,
                _ => 0,
            })
            .collect();
        let thr0 = if wide {
            [0, 1 << 15, (1 << 15) - 1, u16::MAX as u32 - 1, u16::MAX as u32, u32::MAX][case / 3 % 6]
        } else {
            (rng(&mut seed) % 50) as u32
        };
        let run = |isa: Isa| {
            let mut a = acc.clone();
            let mut got = Vec::new();
            let mut thr = thr0;
            drain_above_u16(isa, &mut a, thr0, |d, s| {
                got.push((d, s));
                thr = thr.max(s / 2);
                thr
            });
            assert!(a.iter().all(|&x| x == 0), "{isa:?} left accumulators dirty");
            got
        };
        let want = run(Isa::SCALAR);
        let brute: Vec<(u32, u32)> = acc
            .iter()
            .enumerate()
            .filter(|&(_, &s)| s as u32 > thr0)
            .map(|(d, &s)| (d as u32, s as u32))
            .take(1)
            .collect();
        assert_eq!(want.first(), brute.first(), "case {case}: the first entry above the threshold");
        for isa in available() {
            assert_eq!(run(isa), want, "{isa:?} case {case}");
        }
    }
}

/// `accumulate_u16` adds `w x impact` to the named accumulators only (up to `u16::MAX`
/// exactly), ignoring ids past the end.
#[test]
fn accumulate_u16_adds_what_it_is_given() {
    let mut acc = vec![0u16; 10];
    acc[9] = 1;
    accumulate_u16(&mut acc, &[0, 3, 9, 10, 400], &[2, 255, 1, 7, 7], 257);
    assert_eq!(acc, vec![514, 0, 0, u16::MAX, 0, 0, 0, 0, 0, 258]);
}

/// The seeded two-pass drain keeps what a collector of the best `k` keeps from the one-pass
/// drain, on every kernel set: the same top-k (ties to the smaller document), every
/// accumulator zero afterwards, documents offered in ascending order; with a seed the
/// offers are far fewer where scores spread.
#[test]
fn drain_top_u16_keeps_the_top_k_of_the_plain_drain() {
    let mut seed = 91u64;
    for case in 0..400 {
        let n = (rng(&mut seed) % 5000) as usize;
        let density = 1 + rng(&mut seed) % 8;
        let acc: Vec<u16> = (0..n)
            .map(|_| match rng(&mut seed) % density {
                0 => match case % 4 {
                    0 => (rng(&mut seed) % 300) as u16,
                    1 => u16::MAX - (rng(&mut seed) % 700) as u16,
                    2 => (rng(&mut seed) % 40) as u16 * 256,
                    _ => rng(&mut seed) as u16,
                },
                _ => 0,
            })
            .collect();
        let k = [1usize, 3, 10, 40, 250, 6000][case % 6];
        let floor = [0u32, 0, 100, 255, 256, 40_000][case / 6 % 6];
        // A collector of the best k above the floor (ties to the smaller doc), fed in order.
        let collect = |drain: &mut dyn FnMut(&mut Vec<u16>, &mut dyn FnMut(u32, u32) -> u32)| {
            let mut a = acc.clone();
            let mut top: Vec<(u32, u32)> = Vec::new();
            let mut offered = 0usize;
            let mut last = None;
            drain(&mut a, &mut |d, s| {
                assert!(last.is_none_or(|l| l < d), "case {case}: offers out of order");
                last = Some(d);
                offered += 1;
                top.push((d, s));
                top.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
                top.truncate(k);
                if top.len() == k {
                    floor.max(top[k - 1].1.saturating_sub(1))
                } else {
                    floor
                }
            });
            assert!(a.iter().all(|&x| x == 0), "case {case}: accumulators left dirty");
            (top, offered)
        };
        let (want, plain) = collect(&mut |a, f| drain_above_u16(Isa::SCALAR, a, floor, f));
        for isa in available() {
            for seed_k in [0, k] {
                let mut maxes = Vec::new();
                let (got, offered) = collect(&mut |a, f| drain_top_u16(isa, a, floor, seed_k, &mut maxes, f));
                assert_eq!(got, want, "{isa:?} case {case} k {k} seed_k {seed_k}");
                assert!(offered <= plain, "{isa:?} case {case}: {offered} offers, {plain} without the seed");
            }
        }
    }
}
