//! Refitting the readout on held-out rows (Platt scaling): per output
//! column, the logistic regression of the click on the column's firing rate
//! and final membrane, `p = sigmoid(w_rate * rate + w_mem * mem_last + bias)`,
//! so that the probabilities the model file serves are calibrated on data
//! the network was not trained on.

use super::trajectory::Trajectory;
use super::{readout, Examples, Network};

/// Rows a column needs before its readout is refitted; below this it keeps
/// the values learned in training.
pub const ROWS_MIN: usize = 30;
/// Newton iterations per column.
const ITERATIONS: usize = 25;
/// Ridge penalty that keeps the 3x3 system well posed.
const RIDGE: f64 = 1e-3;

/// Refits `net`'s readout on `heldout`. Returns how many columns were refitted.
pub fn calibrate(net: &mut Network, heldout: Examples<'_>) -> usize {
    let outputs = net.outputs();
    let mut per_column: Vec<Vec<([f64; 3], f64)>> = vec![Vec::new(); outputs];
    let mut traj = Trajectory::new(net);
    for i in 0..heldout.len() {
        traj.forward(net, heldout.row(i));
        let o = heldout.column[i] as usize;
        let (rate, mem_last, _, _) = readout(net, &traj, o);
        per_column[o].push(([rate as f64, mem_last as f64, 1.0], heldout.label[i] as f64));
    }
    let mut refitted = 0;
    for (o, rows) in per_column.iter().enumerate() {
        if rows.len() < ROWS_MIN {
            continue;
        }
        let start = [
            net.w_rate[o] as f64,
            net.w_mem[o] as f64,
            net.bias[o] as f64,
        ];
        if let Some([a, b, c]) = newton(rows, start) {
            net.w_rate[o] = a as f32;
            net.w_mem[o] = b as f32;
            net.bias[o] = c as f32;
            refitted += 1;
        }
    }
    refitted
}

/// Ridge-regularised logistic regression on three features by Newton's
/// method. `None` if it does not converge to finite values.
fn newton(rows: &[([f64; 3], f64)], start: [f64; 3]) -> Option<[f64; 3]> {
    let mut w = start;
    for _ in 0..ITERATIONS {
        let mut grad = [0.0f64; 3];
        let mut hess = [[0.0f64; 3]; 3];
        for (x, y) in rows {
            let z: f64 = (0..3).map(|k| w[k] * x[k]).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let s = (p * (1.0 - p)).max(1e-9);
            for i in 0..3 {
                grad[i] += (p - y) * x[i];
                for j in 0..3 {
                    hess[i][j] += s * x[i] * x[j];
                }
            }
        }
        for i in 0..3 {
            grad[i] += RIDGE * w[i];
            hess[i][i] += RIDGE;
        }
        let step = solve3(hess, grad)?;
        for i in 0..3 {
            w[i] -= step[i];
        }
        if step.iter().map(|s| s.abs()).fold(0.0, f64::max) < 1e-9 {
            break;
        }
    }
    w.iter()
        .all(|v| v.is_finite() && v.abs() < 1e6)
        .then_some(w)
}

/// Solves `a x = b` for a 3x3 system by Cramer's rule; `None` if singular.
fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    if d.abs() < 1e-18 {
        return None;
    }
    let mut x = [0.0; 3];
    for (k, xk) in x.iter_mut().enumerate() {
        let mut m = a;
        for r in 0..3 {
            m[r][k] = b[r];
        }
        *xk = det(m) / d;
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve3_solves_a_known_system() {
        let a = [[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]];
        let x = solve3(a, [3.0, 5.0, 5.0]).unwrap();
        for (got, want) in x.iter().zip([1.0, 1.0, 1.0]) {
            assert!((got - want).abs() < 1e-12, "{x:?}");
        }
    }

    #[test]
    fn newton_recovers_a_logistic_relation() {
        // y ~ Bernoulli(sigmoid(2 * a - 1)), deterministic "labels" as expected values.
        let rows: Vec<([f64; 3], f64)> = (0..200)
            .map(|i| {
                let a = i as f64 / 200.0;
                ([a, 0.0, 1.0], 1.0 / (1.0 + (-(2.0 * a - 1.0)).exp()))
            })
            .collect();
        let w = newton(&rows, [0.0, 0.0, 0.0]).unwrap();
        assert!(
            (w[0] - 2.0).abs() < 0.05 && (w[2] + 1.0).abs() < 0.05,
            "{w:?}"
        );
    }
}
