//! Point-in-time replay: each row reads only earlier rows; ties see none
//! of each other; the leaky visibility counts the row itself.

use cx_featurestore::history::{replay, LoggedRow, Visibility};
use cx_featurestore::{Definitions, Value};
use std::sync::Arc;

const DEFS: &str = include_str!("../../../models/features.toml");
const T0: i64 = 1_767_225_600;

fn defs() -> Arc<Definitions> {
    Arc::new(Definitions::from_toml_str(DEFS).expect("bundled definitions"))
}

/// (views_30d, clicks_30d) each row reads, in row order.
fn counts(rows: &[LoggedRow], visibility: Visibility) -> Vec<(i64, i64)> {
    let defs = defs();
    let views = defs.find("views_30d").unwrap();
    let clicks = defs.find("clicks_30d").unwrap();
    let mut out = vec![(-1, -1); rows.len()];
    let report = replay(defs.clone(), rows, visibility, |i, values| {
        let n = |id| match values.value(id) {
            Some(Value::I64(n)) => n,
            other => panic!("{other:?}"),
        };
        out[i] = (n(views), n(clicks));
    })
    .expect("replay");
    assert_eq!(report.rows, rows.len() as u64);
    out
}

fn row(user: u64, time_s: i64, clicked: bool) -> LoggedRow {
    LoggedRow {
        user,
        time_s,
        clicked,
    }
}

#[test]
fn rows_read_only_what_came_before_them_in_time_whatever_the_file_order() {
    // File order is not time order.
    let rows = [
        row(1, T0 + 30, false),
        row(1, T0 + 10, true),
        row(2, T0 + 20, true),
        row(1, T0 + 20, false),
        row(1, T0 + 40, true),
    ];
    assert_eq!(
        counts(&rows, Visibility::StrictlyBefore),
        vec![(2, 1), (0, 0), (0, 0), (1, 1), (3, 1)]
    );
}

#[test]
fn rows_of_one_second_see_none_of_each_other() {
    let rows = [row(1, T0, true), row(1, T0, true), row(1, T0 + 1, false)];
    assert_eq!(
        counts(&rows, Visibility::StrictlyBefore),
        vec![(0, 0), (0, 0), (2, 2)]
    );
}

#[test]
fn the_leaky_visibility_counts_the_row_itself() {
    let rows = [row(1, T0, true), row(1, T0 + 5, false)];
    assert_eq!(
        counts(&rows, Visibility::ThroughOwnRow),
        vec![(1, 1), (2, 1)]
    );
    assert_eq!(
        counts(&rows, Visibility::StrictlyBefore),
        vec![(0, 0), (1, 1)]
    );
}

#[test]
fn rows_without_a_user_read_the_defaults_and_change_nothing() {
    let rows = [
        row(0, T0, true),
        row(0, T0 + 1, true),
        row(3, T0 + 2, false),
    ];
    assert_eq!(
        counts(&rows, Visibility::StrictlyBefore),
        vec![(0, 0), (0, 0), (0, 0)]
    );
}

#[test]
fn values_older_than_their_ttl_read_as_missing() {
    // views_30d and clicks_30d have a TTL of 2 days.
    let rows = [row(1, T0, true), row(1, T0 + 3 * 86_400, false)];
    assert_eq!(
        counts(&rows, Visibility::StrictlyBefore),
        vec![(0, 0), (0, 0)]
    );
}

#[test]
fn times_out_of_range_are_clamped_and_counted() {
    let rows = [row(1, -5, true), row(1, i64::MAX, false)];
    let report = replay(defs(), &rows, Visibility::StrictlyBefore, |_, _| {}).unwrap();
    assert_eq!(
        report.times_clamped, 4,
        "each row is read and applied at time 0"
    );
    assert_eq!(report.users, 1);
}
