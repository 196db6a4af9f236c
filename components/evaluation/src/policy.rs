//! Target policies over an event's candidate actions, from a score per
//! action: what a candidate model would do, as the probability of each
//! action the log lists.
//!
//! A score of `None` marks an action the policy would never take (e.g. an
//! offer the engine's rules exclude); it gets probability 0, also from
//! exploration.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A target policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TargetPolicy {
    /// All probability on the best-scored action; tied best actions share it
    /// equally.
    Greedy,
    /// Greedy with probability `1 - epsilon`, else uniform over the actions
    /// with a score.
    EpsilonGreedy {
        /// The exploration probability, in `[0, 1]`.
        epsilon: f64,
    },
}

impl TargetPolicy {
    /// Fills `out` with the policy's probability of each action. Every entry
    /// is 0 when no action has a score (the policy takes none of them).
    pub fn distribution(&self, scores: &[Option<f64>], out: &mut Vec<f64>) {
        out.clear();
        out.resize(scores.len(), 0.0);
        let best = scores
            .iter()
            .flatten()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let scored = scores.iter().flatten().count();
        if scored == 0 {
            return;
        }
        let tied = scores.iter().filter(|s| **s == Some(best)).count();
        let epsilon = match *self {
            Self::Greedy => 0.0,
            Self::EpsilonGreedy { epsilon } => epsilon,
        };
        let explore = epsilon / scored as f64;
        let exploit = (1.0 - epsilon) / tied as f64;
        for (p, score) in out.iter_mut().zip(scores) {
            if let Some(score) = *score {
                *p = explore + if score == best { exploit } else { 0.0 };
            }
        }
    }
}

impl FromStr for TargetPolicy {
    type Err = Error;

    /// `greedy`, or `epsilon:E` with `E` in `[0, 1]`.
    fn from_str(text: &str) -> Result<Self> {
        if text == "greedy" {
            return Ok(Self::Greedy);
        }
        let epsilon = text
            .strip_prefix("epsilon:")
            .and_then(|e| e.parse::<f64>().ok())
            .filter(|e| (0.0..=1.0).contains(e))
            .ok_or_else(|| Error::PolicyName(text.to_string()))?;
        Ok(Self::EpsilonGreedy { epsilon })
    }
}

impl fmt::Display for TargetPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Greedy => f.write_str("greedy"),
            Self::EpsilonGreedy { epsilon } => write!(f, "epsilon:{epsilon}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(policy: TargetPolicy, scores: &[Option<f64>]) -> Vec<f64> {
        let mut out = vec![9.0];
        policy.distribution(scores, &mut out);
        out
    }

    #[test]
    fn greedy_takes_the_best_and_splits_ties() {
        let greedy = TargetPolicy::Greedy;
        assert_eq!(of(greedy, &[Some(0.1), Some(0.3), None]), [0.0, 1.0, 0.0]);
        assert_eq!(
            of(greedy, &[Some(0.3), Some(0.3), Some(0.1)]),
            [0.5, 0.5, 0.0]
        );
        assert_eq!(of(greedy, &[None, None]), [0.0, 0.0]);
        assert_eq!(of(greedy, &[]), Vec::<f64>::new());
    }

    #[test]
    fn epsilon_greedy_explores_only_over_scored_actions() {
        let policy = TargetPolicy::EpsilonGreedy { epsilon: 0.2 };
        let p = of(policy, &[Some(0.1), Some(0.3), None, Some(0.2)]);
        let expected = [0.2 / 3.0, 0.8 + 0.2 / 3.0, 0.0, 0.2 / 3.0];
        for (got, want) in p.iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{p:?}");
        }
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        let uniform = of(
            TargetPolicy::EpsilonGreedy { epsilon: 1.0 },
            &[Some(1.0), Some(0.0)],
        );
        assert_eq!(uniform, [0.5, 0.5]);
    }

    #[test]
    fn names_parse_and_print() {
        assert_eq!(
            "greedy".parse::<TargetPolicy>().unwrap(),
            TargetPolicy::Greedy
        );
        let policy: TargetPolicy = "epsilon:0.1".parse().unwrap();
        assert_eq!(policy, TargetPolicy::EpsilonGreedy { epsilon: 0.1 });
        assert_eq!(policy.to_string(), "epsilon:0.1");
        for bad in [
            "",
            "Greedy",
            "epsilon",
            "epsilon:",
            "epsilon:1.5",
            "epsilon:-0.1",
            "epsilon:nan",
        ] {
            let err = bad.parse::<TargetPolicy>().unwrap_err().to_string();
            assert!(
                err.contains("greedy") && err.contains(&format!("`{bad}`")),
                "{err}"
            );
        }
    }
}
