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
/// Ridge penalty per row that keeps the 3x3 system well posed even when a
/// column's firing rate barely varies.
const RIDGE_PER_ROW: f64 = 1e-4;

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
/// method with a backtracking line search (a step is taken only when it
/// lowers the penalised loss, so the fit cannot diverge on separable or
/// nearly constant data). `None` if it ends on non-finite values.
fn newton(rows: &[([f64; 3], f64)], start: [f64; 3]) -> Option<[f64; 3]> {
    let ridge = RIDGE_PER_ROW * rows.len() as f64;
    let mut w = start;
    let mut loss = penalised_loss(rows, w, ridge);
    for _ in 0..ITERATIONS {
        let mut grad = [0.0f64; 3];
        let mut hess = [[0.0f64; 3]; 3];
        for (x, y) in rows {
            let p = logistic(dot(w, *x));
            let s = (p * (1.0 - p)).max(1e-9);
            for i in 0..3 {
                grad[i] += (p - y) * x[i];
                for j in 0..3 {
                    hess[i][j] += s * x[i] * x[j];
                }
            }
        }
        for i in 0..3 {
            grad[i] += ridge * w[i];
            hess[i][i] += ridge;
        }
        let step = solve3(hess, grad)?;
        let mut scale = 1.0;
        let accepted = loop {
            let candidate = [
                w[0] - scale * step[0],
                w[1] - scale * step[1],
                w[2] - scale * step[2],
            ];
            let candidate_loss = penalised_loss(rows, candidate, ridge);
            if candidate_loss <= loss {
                break Some((candidate, candidate_loss));
            }
            scale *= 0.5;
            if scale < 1e-6 {
                break None;
            }
        };
        let Some((next, next_loss)) = accepted else {
            break;
        };
        let moved = (0..3).map(|i| (next[i] - w[i]).abs()).fold(0.0, f64::max);
        (w, loss) = (next, next_loss);
        if moved < 1e-9 {
            break;
        }
    }
    w.iter().all(|v| v.is_finite()).then_some(w)
}

fn dot(w: [f64; 3], x: [f64; 3]) -> f64 {
    w[0] * x[0] + w[1] * x[1] + w[2] * x[2]
}

fn logistic(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Summed cross-entropy plus the ridge penalty.
fn penalised_loss(rows: &[([f64; 3], f64)], w: [f64; 3], ridge: f64) -> f64 {
    let data: f64 = rows
        .iter()
        .map(|(x, y)| {
            let p = logistic(dot(w, *x)).clamp(1e-12, 1.0 - 1e-12);
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum();
    data + 0.5 * ridge * w.iter().map(|v| v * v).sum::<f64>()
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
    fn newton_stays_finite_and_bounded_on_separable_data() {
        // Every positive has feature 1, every negative feature 0: plain Newton diverges.
        let rows: Vec<([f64; 3], f64)> = (0..100)
            .map(|i| {
                (
                    [f64::from(u8::from(i < 10)), 0.0, 1.0],
                    if i < 10 { 1.0 } else { 0.0 },
                )
            })
            .collect();
        let w = newton(&rows, [0.0, 0.0, 0.0]).unwrap();
        assert!(
            w.iter().all(|v| v.abs() < 50.0),
            "the ridge keeps it bounded: {w:?}"
        );
        assert!(w[0] > 1.0, "and it still separates: {w:?}");
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
