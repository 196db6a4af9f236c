//! The HTTP bidder's metrics: answers by status, no-bids by OpenRTB
//! reason, deadlines missed (both protocols), and notices by kind and how
//! they matched the bids made. Every label set is fixed and resolved at
//! construction, so recording is an array lookup and an atomic add.

use super::counter;
use crate::http::{HttpCounts, NO_BID_CODES, STATUSES};
use cx_domain::notice::NoticeKind;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// What became of a notice: the `result` label of `cx_notices_total`, in
/// [`HttpCounts::notices`] order: joined to its bid and applied, held for
/// a bid not logged yet, refused by the join (`cx_feedback_refused_total`
/// says why), or an invalid query.
pub const NOTICE_RESULTS: [&str; 4] = ["applied", "held", "refused", "invalid"];

/// The HTTP bidder's counters.
#[derive(Debug)]
pub(super) struct HttpMetrics {
    requests: Counter,
    answers: Vec<Counter>,
    no_bids: Vec<Counter>,
    deadline_expired: Counter,
    deadline_shed: Counter,
    /// `[kind][result]`.
    notices: Vec<[Counter; 4]>,
}

type Labels = Vec<(&'static str, String)>;

impl HttpMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let answers = Family::<Labels, Counter>::default();
        registry.register(
            "cx_http_answers",
            "HTTP answers of the OpenRTB bidder, by status",
            answers.clone(),
        );
        let no_bids = Family::<Labels, Counter>::default();
        registry.register(
            "cx_no_bids",
            "No-bids answered over HTTP (204), by OpenRTB 2.6 no-bid reason code",
            no_bids.clone(),
        );
        let notices = Family::<Labels, Counter>::default();
        registry.register(
            "cx_notices",
            "Win, billing and loss notices, by kind and by how they matched the bids made (first, duplicate, unknown bid, invalid query)",
            notices.clone(),
        );
        Self {
            requests: counter(
                registry,
                "cx_http_requests",
                "HTTP requests read by the OpenRTB bidder (heads complete)",
            ),
            answers: STATUSES
                .iter()
                .map(|s| answers.get_or_create_owned(&vec![("status", s.to_string())]))
                .collect(),
            no_bids: (0..NO_BID_CODES)
                .map(|c| no_bids.get_or_create_owned(&vec![("nbr", c.to_string())]))
                .collect(),
            deadline_expired: counter(
                registry,
                "cx_deadline_expired",
                "Requests not decided within their deadline (tmax less the network margin): HTTP no-bids with reason 1 and binary timeout errors",
            ),
            deadline_shed: counter(
                registry,
                "cx_deadline_shed",
                "Requests shed at admission (HTTP 503, binary overloaded) because the engine's backlog, at its recent pace, would decide them after their deadline",
            ),
            notices: NoticeKind::ALL
                .iter()
                .map(|k| {
                    NOTICE_RESULTS.map(|r| {
                        notices.get_or_create_owned(&vec![
                            ("kind", k.label().to_owned()),
                            ("result", r.to_owned()),
                        ])
                    })
                })
                .collect(),
        }
    }

    pub(super) fn add(&self, counts: &HttpCounts) {
        self.requests.inc_by(counts.requests);
        for (c, &n) in self.answers.iter().zip(&counts.answers) {
            if n > 0 {
                c.inc_by(n);
            }
        }
        for (c, &n) in self.no_bids.iter().zip(&counts.no_bids) {
            if n > 0 {
                c.inc_by(n);
            }
        }
        self.add_deadline(counts.deadline_expired, counts.deadline_shed);
        for (kind, per) in self.notices.iter().zip(&counts.notices) {
            for (c, &n) in kind.iter().zip(per) {
                if n > 0 {
                    c.inc_by(n);
                }
            }
        }
    }

    pub(super) fn add_deadline(&self, expired: u64, shed: u64) {
        if expired > 0 {
            self.deadline_expired.inc_by(expired);
        }
        if shed > 0 {
            self.deadline_shed.inc_by(shed);
        }
    }
}
