//! What an exchange tells a bidder after an auction: the bid won (with the
//! clearing price), the impression is billable, or the bid lost (with the
//! exchange's loss reason). The server reads these from the notice URLs it
//! put in its bids; the engine takes each as a [`Notice`]
//! (`Engine::on_notice`), the one place where feedback enters.
//!
//! Every string is bounded by [`NOTICE_ID_BYTES_MAX`], so a notice is a
//! small, fixed-size-bounded value whatever the URL carried.

/// Longest id a notice carries (bid, impression, auction), bytes.
pub const NOTICE_ID_BYTES_MAX: usize = 256;

/// Which notice an exchange sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// `nurl`: the bid won the auction.
    Win,
    /// `burl`: the impression is billable.
    Bill,
    /// `lurl`: the bid lost.
    Loss,
}

impl NoticeKind {
    /// Every kind, in [`Self::index`] order.
    pub const ALL: [Self; 3] = [Self::Win, Self::Bill, Self::Loss];

    /// Position in [`Self::ALL`].
    pub fn index(self) -> usize {
        match self {
            Self::Win => 0,
            Self::Bill => 1,
            Self::Loss => 2,
        }
    }

    /// The notice path's last segment and the metric label: `win`, `bill`,
    /// `loss`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Win => "win",
            Self::Bill => "bill",
            Self::Loss => "loss",
        }
    }
}

/// One notice, validated: ids within [`NOTICE_ID_BYTES_MAX`], prices finite
/// and not negative.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// Win, billing or loss.
    pub kind: NoticeKind,
    /// The bid's id (`${AUCTION_BID_ID}`): the key notices join on.
    pub bid_id: String,
    /// The impression's id (`${AUCTION_IMP_ID}`), possibly empty.
    pub imp_id: String,
    /// The exchange's auction id (`${AUCTION_ID}`), possibly empty.
    pub auction_id: String,
    /// The clearing price (`${AUCTION_PRICE}`), CPM in `currency`; `None`
    /// on a loss that does not carry it.
    pub price_cpm: Option<f64>,
    /// `${AUCTION_CURRENCY}`, empty when not given.
    pub currency: String,
    /// The offer bid with, as the bidder wrote it into the URL.
    pub offer_id: Option<u64>,
    /// `${AUCTION_LOSS}`: the exchange's loss reason code (OpenRTB list
    /// 5.25), on a loss.
    pub loss_code: Option<u32>,
}
