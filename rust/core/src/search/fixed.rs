//! Fixed-point scores: float contributions added exactly, so that a document's score does not
//! depend on the order in which its contributions are summed.
//!
//! Float addition is not associative: the f32 sum of a document's per-term contributions
//! depends on the order of the terms. The float vector kind ([`super::F32Kind`]) sums them in
//! ascending term id, and term ids are the caller's, the same in every index over the same
//! vectors. BM25 term ids are not: each BM25 dictionary numbers terms in the order in which it
//! first met them, so two indexes over the same documents (added in another order, or split
//! into shards, each with its own dictionary) would add the same contributions in different
//! orders. Float BM25 ([`super::Bm25F32Kind`]) therefore sums in fixed point:
//!
//! - A query fixes a unit `2^-e`, the smallest power of two for which the sum of its term
//!   weights `sum W_t` (a bound of every score, since a BM25 contribution `W / (1 + K / tf)` is
//!   at most `W`) stays below `2^62` units ([`unit_exponent`]). It depends on the query and the
//!   collection statistics only, never on a segment or shard.
//! - A contribution `c` (the f32 the textbook formula gives) becomes `trunc(c x 2^e)` units
//!   ([`to_units`]; at least 1 for `c > 0`, so that no match is lost): exact whenever
//!   `c >= 2^(23-e)`, that is, for every contribution above `2^-39 sum W`.
//! - A score is the exact u64 sum of its contributions' units, the same whatever the order,
//!   and is reported as the f32 nearest to it (`units as f32`, round to nearest even) times
//!   `2^-e`: the correctly rounded sum of the contributions, where they are exact.
//! - Scores rank by that f32: two sums that round to the same f32 are a tie (broken by id, as
//!   the reported scores of a shard merge are), so the collector compares each score's
//!   *canonical* value ([`Fixed::canon`], the smallest sum that rounds to the same f32), and
//!   the threshold just below a score is the largest sum that rounds below it.
//!
//! Sums are integers, so pruning is exact (no float slack) and every algorithm equals the
//! exhaustive scorer bit for bit, as with the u8 kinds.

use super::topk::Score;

/// A fixed-point score: a whole number of units `2^-e` (the query's [`unit_exponent`]).
/// Ordered by value; ranked by [`Fixed::canon`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fixed(pub u64);

impl std::ops::Add for Fixed {
    type Output = Fixed;
    #[inline(always)]
    fn add(self, o: Fixed) -> Fixed {
        Fixed(self.0 + o.0)
    }
}

impl std::ops::Sub for Fixed {
    type Output = Fixed;
    /// Exact: used to take back a contribution added before (a bound sum's unread remainder).
    #[inline(always)]
    fn sub(self, o: Fixed) -> Fixed {
        Fixed(self.0 - o.0)
    }
}

impl std::ops::AddAssign for Fixed {
    #[inline(always)]
    fn add_assign(&mut self, o: Fixed) {
        self.0 += o.0;
    }
}

impl Fixed {
    /// The f32 nearest to this many units (round to nearest, ties to even), in units.
    #[inline(always)]
    pub fn rounded(self) -> f32 {
        self.0 as f32
    }

    /// The smallest sum that rounds to the same f32 as `self`: scores with the same canonical
    /// value are reported equal, and rank as a tie.
    #[inline]
    pub fn canon(self) -> Fixed {
        let r = self.0;
        if r <= 1 << 24 {
            return self; // every integer up to 2^24 is an f32
        }
        let y = r as f32;
        // y >= 2^24 is a whole number; the integers that round to y start just above the
        // midpoint between y and the f32 below it (exact in f64: 26 significant bits at most).
        let below = f32::from_bits(y.to_bits() - 1);
        let mid = (below as f64 + y as f64) * 0.5;
        let mut c = mid as u64; // <= r, since r rounds to y
        while c < r && c as f32 != y {
            c += 1; // at most twice: mid, or mid + 1 when the tie at mid rounds down
        }
        Fixed(c)
    }
}

impl Score for Fixed {
    /// The largest sum that rounds to an f32 below `self`'s.
    #[inline]
    fn just_below(self) -> Fixed {
        Fixed(self.canon().0.saturating_sub(1))
    }
    #[inline(always)]
    fn canon(self) -> Fixed {
        Fixed::canon(self)
    }
}

/// Sums stay below `2^UNITS_BITS` units (room for adding two bounds of sums in u64).
pub const UNITS_BITS: i32 = 62;

/// The unit exponent `e` of a query whose term weights sum to `sum_w` (every score is at most
/// `sum_w`): the largest `e` with `sum_w x 2^e <= 2^62`, clamped to `-120..=120` (0 if
/// `sum_w` is not a positive finite number).
pub fn unit_exponent(sum_w: f64) -> i32 {
    if !(sum_w > 0.0 && sum_w.is_finite()) {
        return 0;
    }
    let mut e = UNITS_BITS - sum_w.log2().ceil() as i32;
    while e > -120 && sum_w * 2f64.powi(e) > 2f64.powi(UNITS_BITS) {
        e -= 1;
    }
    while e < 120 && sum_w * 2f64.powi(e + 1) <= 2f64.powi(UNITS_BITS) {
        e += 1;
    }
    e.clamp(-120, 120)
}

/// The units of a contribution already scaled by `2^e` (`x = c x 2^e`): `trunc(x)`, at least
/// 1 when `x > 0`. Non-decreasing in `x`, so a bound of contributions is a bound of units.
#[inline(always)]
pub fn to_units(x: f32) -> Fixed {
    Fixed((x as u64).max((x > 0.0) as u64))
}

/// The score of `s` units of `2^-e` (`norm = 2^e`), as reported.
#[inline(always)]
pub fn to_f32(s: Fixed, norm: f32) -> f32 {
    (s.rounded() as f64 / norm as f64) as f32
}

/// The largest sum whose reported score ([`to_f32`]) is below `f` (zero if none).
pub fn floor_below(f: f32, norm: f32) -> Fixed {
    if !(f > 0.0) {
        return Fixed(0);
    }
    // to_f32 is non-decreasing: binary search for the last sum below f.
    let (mut lo, mut hi) = (0u64, 1u64 << 63); // to_f32(lo) < f; hi: unknown
    if to_f32(Fixed(hi), norm) < f {
        return Fixed(hi);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if to_f32(Fixed(mid), norm) < f {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Fixed(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// canon is the smallest sum with the same f32, by brute force around bucket edges.
    #[test]
    fn canon_is_the_bottom_of_its_f32_bucket() {
        let mut seed = 7u64;
        let mut cases: Vec<u64> = vec![0, 1, (1 << 24) - 1, 1 << 24, (1 << 24) + 1, (1 << 24) + 2, (1 << 25) + 3];
        for _ in 0..20_000 {
            let bits = 1 + rng(&mut seed) % 62;
            cases.push(rng(&mut seed) >> (64 - bits));
        }
        for &r in &cases {
            let c = Fixed(r).canon().0;
            assert!(c <= r, "{r}");
            assert_eq!(c as f32, r as f32, "{r}");
            assert!(c == 0 || (c - 1) as f32 != r as f32, "{r}: {c} is not the bottom");
            assert_eq!(Fixed(c).canon().0, c, "idempotent at {r}");
            let jb = Fixed(r).just_below().0;
            assert!(r == 0 || ((jb as f32) < (r as f32) && (jb + 1) as f32 == r as f32), "{r}");
        }
    }

    #[test]
    fn canon_is_monotone() {
        let mut seed = 3u64;
        for _ in 0..20_000 {
            let a = rng(&mut seed) >> 2;
            let b = a.saturating_add(rng(&mut seed) >> (2 + rng(&mut seed) % 62));
            assert!(Fixed(a).canon() <= Fixed(b).canon(), "{a} {b}");
        }
    }

    #[test]
    fn unit_exponent_keeps_sums_in_62_bits() {
        for s in [1e-30f64, 1e-7, 0.3, 1.0, 1.5, 2.0, 7.25, 1e6, 3.4e38 * 200.0] {
            let e = unit_exponent(s);
            assert!(s * 2f64.powi(e) <= 2f64.powi(62), "{s}");
            assert!(s * 2f64.powi(e + 1) > 2f64.powi(62) || e == 120, "{s}: e = {e} is not the largest");
        }
        assert_eq!(unit_exponent(0.0), 0);
        assert_eq!(unit_exponent(f64::NAN), 0);
    }

    #[test]
    fn units_are_monotone_and_keep_matches() {
        assert_eq!(to_units(0.0), Fixed(0));
        assert_eq!(to_units(1e-30), Fixed(1));
        assert_eq!(to_units(2.5), Fixed(2));
        assert_eq!(to_units(2f32.powi(40)), Fixed(1 << 40));
        let mut seed = 5u64;
        for _ in 0..10_000 {
            let a = f32::from_bits((rng(&mut seed) % 0x5e80_0000) as u32); // below 2^62
            let b = f32::from_bits((rng(&mut seed) % 0x5e80_0000) as u32);
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            assert!(to_units(a) <= to_units(b));
        }
    }

    #[test]
    fn floor_below_is_the_last_sum_under_f() {
        let norm = 2f32.powi(40);
        let mut seed = 9u64;
        for _ in 0..2_000 {
            let r = rng(&mut seed) >> (2 + rng(&mut seed) % 50);
            let f = to_f32(Fixed(r), norm);
            let fl = floor_below(f, norm).0;
            assert!(to_f32(Fixed(fl), norm) < f || (fl == 0 && f <= to_f32(Fixed(0), norm)));
            assert!(to_f32(Fixed(fl + 1), norm) >= f);
            assert_eq!(fl, Fixed(r).just_below().0, "a reported score's floor is its threshold");
        }
        assert_eq!(floor_below(0.0, norm), Fixed(0));
    }
}
