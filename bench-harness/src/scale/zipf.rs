//! Deterministic randomness for the scale run: a splitmix64 generator and a Zipf sampler,
//! so that every run with the same seed builds the same topics, whatever the thread count.
//!
//! The sampler is rejection-inversion (Hörmann and Derflinger, "Rejection-inversion to
//! generate variates from monotone discrete distributions", 1996): O(1) per draw and no
//! table, so it costs no memory however many topics there are.

/// splitmix64: small, fast, and good enough to pick processes and topics.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`, with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; its bias is below 2^-32 for the `n`s
    /// used here).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// splitmix64's finalizer: a bijection on `u64` that looks random.
#[must_use]
pub const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Ranks `1..=n` with `P(k)` proportional to `k^-exponent`.
#[derive(Debug, Clone, Copy)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_x1: f64,
    h_n: f64,
    s: f64,
}

impl Zipf {
    /// # Panics
    ///
    /// If `n` is 0 or `exponent` is not positive.
    #[must_use]
    pub fn new(n: usize, exponent: f64) -> Self {
        assert!(
            n > 0 && exponent > 0.0,
            "need n >= 1 and a positive exponent"
        );
        let mut z = Self {
            n: n as f64,
            exponent,
            h_x1: 0.0,
            h_n: 0.0,
            s: 0.0,
        };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(n as f64 + 0.5);
        z.s = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// A rank in `1..=n`.
    pub fn sample(&self, rng: &mut SplitMix64) -> usize {
        loop {
            let u = self.h_n + rng.next_f64() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as usize;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    /// The integral of `h` from 1 to `x`, plus a constant.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.exponent) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (ln1p_over_x(t) * x).exp()
    }
}

/// `(e^x - 1) / x`, continuous at 0.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x / 2.0 * (1.0 + x / 3.0)
    }
}

/// `ln(1 + x) / x`, continuous at 0.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x / 3.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{SplitMix64, Zipf};

    /// Empirical frequencies match `k^-s / H(n, s)` within a few standard deviations.
    #[test]
    fn zipf_matches_its_distribution() {
        for (n, exponent) in [(1_000, 1.0), (50, 1.3), (10, 0.6), (1, 1.0)] {
            let zipf = Zipf::new(n, exponent);
            let mut rng = SplitMix64::new(7);
            let draws = 200_000;
            let mut counts = vec![0_u32; n + 1];
            for _ in 0..draws {
                let k = zipf.sample(&mut rng);
                assert!((1..=n).contains(&k));
                counts[k] += 1;
            }
            let norm: f64 = (1..=n).map(|k| (k as f64).powf(-exponent)).sum();
            for k in [1, n.min(2), n.min(5), n] {
                let p = (k as f64).powf(-exponent) / norm;
                let expected = p * f64::from(draws);
                let sd = (expected * (1.0 - p)).sqrt().max(1.0);
                let got = f64::from(counts[k]);
                assert!(
                    (got - expected).abs() < 5.0 * sd,
                    "n={n} s={exponent} k={k}: {got} draws, expected {expected:.0}"
                );
            }
        }
    }

    #[test]
    fn same_seed_same_draws() {
        let zipf = Zipf::new(10_000, 1.0);
        let (mut a, mut b) = (SplitMix64::new(3), SplitMix64::new(3));
        for _ in 0..1_000 {
            assert_eq!(zipf.sample(&mut a), zipf.sample(&mut b));
        }
        let mut r = SplitMix64::new(9);
        assert!((0..1_000).all(|_| r.below(7) < 7));
    }
}
