//! The synthetic auction `cx simulate` settles its bids in: one competing
//! bid per request, drawn log-normal around the request's floor; the higher
//! bid wins and pays the second price.
//!
//! ```text
//! competing = floor * median_over_floor * exp(log_sd * z),  z ~ N(0, 1)
//! win       = bid > competing
//! clearing  = max(competing, floor)      (second price, the floor a reserve)
//! P(win)    = Phi(ln(bid / (floor * median_over_floor)) / log_sd)
//! ```
//!
//! It owns the draw of the competing bid from a uniform the caller supplies
//! (so every policy of a run meets the same competitor on the same request),
//! the settlement and the exact win probability (the off-policy truth needs
//! it: a click can only follow a won auction).

/// Smallest floor the competing bid is drawn around, CPM (a request whose
/// floor is 0 or not finite still meets a competitor).
pub const FLOOR_MIN_CPM: f64 = 0.01;

/// The auction's parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Auction {
    /// The competing bid's median, as a multiple of the floor.
    pub median_over_floor: f64,
    /// The standard deviation of the competing bid's logarithm.
    pub log_sd: f64,
}

impl Default for Auction {
    /// A competitor whose median bid is 1.2 times the floor, log-sd 0.6:
    /// a bid at the floor wins about 38% of the time, one at twice the
    /// floor about 80%.
    fn default() -> Self {
        Self {
            median_over_floor: 1.2,
            log_sd: 0.6,
        }
    }
}

/// What became of one bid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// Won, paying the clearing price (CPM).
    Won {
        /// The clearing price, CPM.
        clearing_cpm: f64,
    },
    /// Lost to the higher competing bid.
    Lost,
}

impl Auction {
    /// The competing bid for a request with floor `floor_cpm`, from the
    /// standard normal `z`.
    pub fn competing_bid(&self, floor_cpm: f64, z: f64) -> f64 {
        effective_floor(floor_cpm) * self.median_over_floor * (self.log_sd * z).exp()
    }

    /// Settles `bid_cpm` against `competing_cpm` under `floor_cpm`. A bid
    /// that does not beat the competitor (ties lose), or is not finite,
    /// loses.
    pub fn settle(&self, bid_cpm: f64, competing_cpm: f64, floor_cpm: f64) -> Outcome {
        if !bid_cpm.is_finite() || bid_cpm <= competing_cpm {
            return Outcome::Lost;
        }
        let floor = if floor_cpm.is_finite() {
            floor_cpm.max(0.0)
        } else {
            0.0
        };
        Outcome::Won {
            clearing_cpm: competing_cpm.max(floor).min(bid_cpm),
        }
    }

    /// The probability that `bid_cpm` wins under `floor_cpm`.
    pub fn win_probability(&self, bid_cpm: f64, floor_cpm: f64) -> f64 {
        if bid_cpm.is_nan() || bid_cpm <= 0.0 {
            return 0.0;
        }
        if bid_cpm == f64::INFINITY {
            return 1.0;
        }
        let median = effective_floor(floor_cpm) * self.median_over_floor;
        normal_cdf((bid_cpm / median).ln() / self.log_sd)
    }
}

fn effective_floor(floor_cpm: f64) -> f64 {
    if floor_cpm.is_finite() {
        floor_cpm.max(FLOOR_MIN_CPM)
    } else {
        FLOOR_MIN_CPM
    }
}

/// The standard normal CDF, `0.5 erfc(-x / sqrt 2)`, with `erfc` from
/// Numerical Recipes' Chebyshev fit (relative error below 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// A standard normal draw from two uniforms in `(0, 1]` and `[0, 1)`
/// (Box-Muller).
pub fn standard_normal(u1: f64, u2: f64) -> f64 {
    let u1 = if u1 > 0.0 { u1 } else { f64::MIN_POSITIVE };
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_higher_bid_wins_and_pays_the_second_price() {
        let auction = Auction::default();
        assert_eq!(
            auction.settle(3.0, 2.0, 1.0),
            Outcome::Won { clearing_cpm: 2.0 }
        );
        // A competitor below the floor: the floor is the price.
        assert_eq!(
            auction.settle(3.0, 0.5, 1.0),
            Outcome::Won { clearing_cpm: 1.0 }
        );
        assert_eq!(auction.settle(2.0, 2.0, 1.0), Outcome::Lost, "ties lose");
        assert_eq!(auction.settle(1.5, 2.0, 1.0), Outcome::Lost);
        assert_eq!(auction.settle(f64::NAN, 0.1, 0.0), Outcome::Lost);
        // Never pays more than it bid.
        assert_eq!(
            auction.settle(1.0, 0.5, 2.0),
            Outcome::Won { clearing_cpm: 1.0 }
        );
    }

    #[test]
    fn the_competing_bid_is_log_normal_around_the_floor() {
        let auction = Auction::default();
        assert!((auction.competing_bid(2.0, 0.0) - 2.4).abs() < 1e-12);
        assert!(auction.competing_bid(2.0, 1.0) > auction.competing_bid(2.0, 0.0));
        assert!((auction.competing_bid(0.0, 0.0) - FLOOR_MIN_CPM * 1.2).abs() < 1e-12);
    }

    #[test]
    fn the_win_probability_matches_the_draws() {
        let auction = Auction::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (floor, n) = (1.5, 200_000);
        for bid in [1.5, 2.0, 3.0, 6.0] {
            let wins = (0..n)
                .filter(|_| {
                    let z = standard_normal(1.0 - rng.random::<f64>(), rng.random());
                    let competing = auction.competing_bid(floor, z);
                    matches!(auction.settle(bid, competing, floor), Outcome::Won { .. })
                })
                .count();
            let share = wins as f64 / n as f64;
            let p = auction.win_probability(bid, floor);
            assert!((share - p).abs() < 0.005, "bid {bid}: {share} vs {p}");
        }
        assert_eq!(auction.win_probability(0.0, 1.0), 0.0);
        assert!((auction.win_probability(1.2, 1.0) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn normal_cdf_has_its_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
        assert!(normal_cdf(-40.0) >= 0.0 && normal_cdf(40.0) <= 1.0);
    }
}
