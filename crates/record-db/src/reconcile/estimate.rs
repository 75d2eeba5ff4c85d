//! Estimating the size of the difference from a prefix that did not decode.

use super::symbol::{CodedSymbol, hit_probabilities};

/// What a residual (partly peeled) difference stream says about the number of differences.
///
/// Keys still hidden in the residual symbols are estimated three ways:
///
/// * `imbalance = |count₀|`: symbol 0 holds every key, so this is exact for one-sided
///   differences and a lower bound otherwise;
/// * `moment`: a hidden key sits in symbol `i` with probability `hᵢ`
///   ([`hit_probabilities`]), so for `x` hidden keys `tᵢ = (countᵢ − count₀·hᵢ)² / (hᵢ(1−hᵢ))`
///   has mean `x` and variance about `x²(2 + 1/(x·hᵢ))`; `moment` is the inverse-variance
///   weighted mean of the `tᵢ` (weights refined twice from the previous value). Its relative
///   standard error is about `√(2/(m−1))` for `m` symbols ([`relative_error`](Self::relative_error));
/// * `occupancy`: the `x` for which the expected number of non-zero symbols among the first 512,
///   `Σ 1 − (1−hᵢ)ˣ`, matches the observed number (if all are non-zero: where one zero is still
///   expected). Useful when hidden keys are few per symbol.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DifferenceEstimate {
    /// Keys already recovered by peeling.
    pub recovered: usize,
    /// `|count₀|` of the residual stream.
    pub imbalance: f64,
    /// Moment estimate of the hidden keys.
    pub moment: f64,
    /// Occupancy estimate of the hidden keys.
    pub occupancy: f64,
    /// Symbols the estimate is based on.
    pub symbols: usize,
}

impl DifferenceEstimate {
    /// Estimates from residual difference symbols `0..residual.len()` and the number of keys
    /// already peeled from them.
    pub fn new(residual: &[CodedSymbol], recovered: usize) -> Self {
        let mut estimate = DifferenceEstimate {
            recovered,
            imbalance: 0.0,
            moment: 0.0,
            occupancy: 0.0,
            symbols: residual.len(),
        };
        let Some(first) = residual.first() else {
            return estimate;
        };
        let hits = hit_probabilities(residual.len());
        let imbalance = first.count as f64;
        let terms: Vec<(f64, f64)> = residual
            .iter()
            .zip(&hits)
            .skip(1)
            .filter(|(_, h)| **h > 0.0 && **h < 1.0)
            .map(|(symbol, &h)| {
                let centred = symbol.count as f64 - imbalance * h;
                (h, centred * centred / (h * (1.0 - h)))
            })
            .collect();
        let mut moment = weighted_mean(&terms, |_| 1.0);
        for _ in 0..2 {
            let x = moment.max(1.0);
            moment = weighted_mean(&terms, |h| 1.0 / (2.0 + 1.0 / (x * h)));
        }
        let sample = residual.get(..512).unwrap_or(residual);
        estimate.imbalance = imbalance.abs();
        estimate.moment = moment;
        estimate.occupancy = occupancy(sample, hits.get(..sample.len()).unwrap_or(&hits));
        estimate
    }

    /// Relative standard error of [`moment`](Self::moment): `√(2/(m−1))`, at most 1.
    pub fn relative_error(&self) -> f64 {
        (2.0 / (self.symbols.max(2) - 1) as f64).sqrt().min(1.0)
    }

    /// Point estimate of the whole difference: recovered plus the largest hidden estimate.
    pub fn point(&self) -> f64 {
        self.recovered as f64 + self.imbalance.max(self.moment).max(self.occupancy)
    }

    /// A cautious estimate for sizing requests. With `g = 1 + r` (`r` the relative error):
    /// `recovered + max(occupancy, imbalance + g·max(0, moment − g·imbalance))`. A moment within
    /// one standard error of the imbalance is taken as noise (a one-sided difference is exactly
    /// its imbalance); otherwise the excess is scaled up by one standard error (a balanced
    /// difference gets `moment·(1 + r)`). Undershooting costs a round trip, overshooting bytes;
    /// this pays bytes only where the counts show keys beyond the imbalance.
    pub fn upper(&self) -> f64 {
        let grow = 1.0 + self.relative_error();
        let excess = (self.moment - grow * self.imbalance).max(0.0);
        let hidden = (self.imbalance + grow * excess).max(self.occupancy);
        self.recovered as f64 + hidden
    }
}

/// `Σ w(h)·t / Σ w(h)` over `(h, t)` pairs (0 for none).
fn weighted_mean(terms: &[(f64, f64)], weight: impl Fn(f64) -> f64) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for &(h, t) in terms {
        let w = weight(h);
        num += w * t;
        den += w;
    }
    if den > 0.0 { num / den } else { 0.0 }
}

/// The number of hidden keys `x` for which `Σᵢ 1 − (1 − hᵢ)ˣ` equals the number of non-zero
/// symbols in `sample`; if every symbol is non-zero, the `x` at which one zero is still expected.
fn occupancy(sample: &[CodedSymbol], hits: &[f64]) -> f64 {
    let nonzero = sample.iter().filter(|s| !s.is_zero()).count() as f64;
    if nonzero == 0.0 {
        return 0.0;
    }
    let target = nonzero.min(sample.len() as f64 - 1.0).max(0.0);
    let expected = |x: f64| -> f64 { hits.iter().map(|h| 1.0 - (1.0 - h).powf(x)).sum() };
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while expected(hi) < target && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..50 {
        let mid = (lo + hi) / 2.0;
        if expected(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}
