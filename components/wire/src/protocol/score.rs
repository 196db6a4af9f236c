//! The score requests: `score_context` (a binary [`RequestContext`]) and
//! `score_openrtb` (an OpenRTB JSON document).

use super::codes::{os_code, os_from_code, MessageType};
use super::control::reserved_zero;
use super::error::ProtocolError;
use super::frame::{finite, FrameStart, Reader};
use super::limits::{
    BID_RESPONSE_BYTES_MAX, LIST_ITEMS_MAX, OPENRTB_JSON_BYTES_MAX, STRING_BYTES_MAX,
};
use super::wire::{ContextWire, F64Le, I64Le, OpenRtbWire, U16Le, U32Le};
use super::{
    CONTEXT_FLAG_DECISION_IDS, OPENRTB_FLAG_DECISION_IDS, SCORE_FLAG_BID_RESPONSE,
    SCORE_FLAG_SIMULATE,
};
use cx_features::{
    AdPosition, ConnectionType, DeviceType, Os, RequestContext, EXTRA_NUMERIC_SLOTS,
};

/// The strings of the tail, in wire order, with their field names.
const STRING_FIELDS: [&str; 5] = ["user_id", "country", "region", "site_id", "domain"];

/// The lists of the tail, in wire order, with their field names.
const LIST_FIELDS: [&str; 3] = ["user_segments", "categories", "extra"];

/// The field name of each `extra_numeric` slot, for errors.
const EXTRA_NUMERIC_FIELDS: [&str; EXTRA_NUMERIC_SLOTS] = [
    "extra_numeric[0]",
    "extra_numeric[1]",
    "extra_numeric[2]",
    "extra_numeric[3]",
];

/// Up to [`LIST_ITEMS_MAX`] strings borrowed from a payload, inline (no heap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrList<'a> {
    items: [&'a str; LIST_ITEMS_MAX],
    len: usize,
}

impl<'a> StrList<'a> {
    const EMPTY: Self = Self {
        items: [""; LIST_ITEMS_MAX],
        len: 0,
    };

    /// The items, in wire order.
    pub fn as_slice(&self) -> &[&'a str] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

/// A `score_context` payload that passed every check, borrowed from the
/// payload: decoding it allocates nothing. [`Self::to_context`] copies it
/// into a new [`RequestContext`]; [`Self::write_into`] copies it into an
/// existing one, reusing its strings' capacity, and
/// [`Self::write_into_pooled`] also keeps the list items it trims for later.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContextView<'a> {
    /// `user_id`.
    pub user_id: &'a str,
    /// `country`.
    pub country: &'a str,
    /// `region`.
    pub region: &'a str,
    /// `site_id`.
    pub site_id: &'a str,
    /// `domain`.
    pub domain: &'a str,
    /// `user_segments`.
    pub user_segments: StrList<'a>,
    /// `categories`.
    pub categories: StrList<'a>,
    /// `extra`.
    pub extra: StrList<'a>,
    /// `device_type`.
    pub device_type: DeviceType,
    /// `os`.
    pub os: Os,
    /// `connection_type`.
    pub connection_type: ConnectionType,
    /// `ad_position`.
    pub ad_position: AdPosition,
    /// `is_app`.
    pub is_app: bool,
    /// `placement_width`.
    pub placement_width: u32,
    /// `placement_height`.
    pub placement_height: u32,
    /// `bid_floor` (finite).
    pub bid_floor: f64,
    /// `timestamp`.
    pub timestamp: i64,
    /// `extra_numeric` (finite).
    pub extra_numeric: [f64; EXTRA_NUMERIC_SLOTS],
    /// The request's simulate flag.
    pub simulate: bool,
    /// The request's `decision_ids` flag: answer with the decision id.
    pub decision_ids: bool,
}

impl ContextView<'_> {
    /// A new context holding the view's values.
    pub fn to_context(&self) -> RequestContext {
        let mut ctx = RequestContext::default();
        self.write_into(&mut ctx);
        ctx
    }

    /// Overwrites every field of `ctx` with the view's values. Reuses the
    /// capacity of `ctx`'s strings and lists, so a context reused across
    /// requests stops allocating once it has grown; but a list shorter
    /// than the one `ctx` held drops its extra items, and a longer one
    /// allocates new ones ([`Self::write_into_pooled`] avoids both).
    pub fn write_into(&self, ctx: &mut RequestContext) {
        self.write_into_pooled(ctx, &mut Vec::new());
    }

    /// [`Self::write_into`], with a pool of spare strings for the lists:
    /// items a list no longer needs go to `spare_strings` while it is
    /// below its capacity (the pool never grows, so this never allocates),
    /// and new items are taken from it first. A host that keeps one pool
    /// for all its contexts allocates nothing once the strings have grown,
    /// whatever the list lengths.
    pub fn write_into_pooled(&self, ctx: &mut RequestContext, spare_strings: &mut Vec<String>) {
        set_string(&mut ctx.user_id, self.user_id);
        set_string(&mut ctx.country, self.country);
        set_string(&mut ctx.region, self.region);
        set_string(&mut ctx.site_id, self.site_id);
        set_string(&mut ctx.domain, self.domain);
        let lists = [
            (&mut ctx.user_segments, self.user_segments.as_slice()),
            (&mut ctx.categories, self.categories.as_slice()),
            (&mut ctx.extra, self.extra.as_slice()),
        ];
        for (dst, src) in lists {
            set_list(dst, src, spare_strings);
        }
        ctx.device_type = self.device_type;
        ctx.os = self.os;
        ctx.connection_type = self.connection_type;
        ctx.ad_position = self.ad_position;
        ctx.is_app = self.is_app;
        ctx.placement_width = self.placement_width;
        ctx.placement_height = self.placement_height;
        ctx.bid_floor = self.bid_floor;
        ctx.timestamp = self.timestamp;
        ctx.extra_numeric = self.extra_numeric;
    }
}

fn set_string(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}

/// Makes `dst` hold `src`: its items are overwritten in place, extra ones
/// go to `spare` (dropped when it is at capacity), and missing ones come
/// from `spare` before any is allocated.
fn set_list(dst: &mut Vec<String>, src: &[&str], spare: &mut Vec<String>) {
    while dst.len() > src.len() {
        match dst.pop() {
            Some(s) if spare.len() < spare.capacity() => spare.push(s),
            _ => {}
        }
    }
    for (i, &item) in src.iter().enumerate() {
        match dst.get_mut(i) {
            Some(s) => set_string(s, item),
            None => {
                let mut s = spare.pop().unwrap_or_default();
                set_string(&mut s, item);
                dst.push(s);
            }
        }
    }
}

/// The flags of a `score_context` request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextFlags {
    /// Decide in simulation mode ([`SCORE_FLAG_SIMULATE`]).
    pub simulate: bool,
    /// Put the decision id in the `decision` ([`CONTEXT_FLAG_DECISION_IDS`]).
    pub decision_ids: bool,
}

impl ContextFlags {
    fn bits(self) -> u8 {
        let mut bits = 0;
        if self.simulate {
            bits |= SCORE_FLAG_SIMULATE;
        }
        if self.decision_ids {
            bits |= CONTEXT_FLAG_DECISION_IDS;
        }
        bits
    }
}

/// Appends a `score_context` frame for `ctx`.
///
/// Refused, leaving `out` as it was: a string over
/// [`STRING_BYTES_MAX`] bytes or a list over [`LIST_ITEMS_MAX`] items
/// ([`ProtocolError::TooLong`]), a non-finite `bid_floor` or
/// `extra_numeric` ([`ProtocolError::NonFinite`]). Offsets in the errors
/// are where the field would have been written. Allocates only if `out`
/// must grow.
pub fn encode_score_context(
    out: &mut Vec<u8>,
    request_id: u64,
    ctx: &RequestContext,
    simulate: bool,
) -> Result<(), ProtocolError> {
    let flags = ContextFlags {
        simulate,
        decision_ids: false,
    };
    encode_score_context_with(out, request_id, ctx, flags)
}

/// [`encode_score_context`] with every flag: `decision_ids` asks for the
/// decision id in the answer.
pub fn encode_score_context_with(
    out: &mut Vec<u8>,
    request_id: u64,
    ctx: &RequestContext,
    flags: ContextFlags,
) -> Result<(), ProtocolError> {
    let frame = FrameStart::begin(out, MessageType::ScoreContext, request_id);
    match write_context(out, ctx, flags, &frame) {
        Ok(()) => frame.end(out).map(drop),
        Err(e) => {
            frame.rollback(out);
            Err(e)
        }
    }
}

fn write_context(
    out: &mut Vec<u8>,
    ctx: &RequestContext,
    flags: ContextFlags,
    frame: &FrameStart,
) -> Result<(), ProtocolError> {
    finite(ctx.bid_floor, "bid_floor", 0)?;
    for (i, (&v, field)) in ctx
        .extra_numeric
        .iter()
        .zip(EXTRA_NUMERIC_FIELDS)
        .enumerate()
    {
        finite(v, field, 16 + 8 * i)?;
    }
    let wire = ContextWire {
        bid_floor: F64Le::new(ctx.bid_floor),
        timestamp: I64Le::new(ctx.timestamp),
        extra_numeric: ctx.extra_numeric.map(F64Le::new),
        placement_width: U32Le::new(ctx.placement_width),
        placement_height: U32Le::new(ctx.placement_height),
        device_type: ctx.device_type.openrtb().unwrap_or(0),
        os: os_code(ctx.os),
        connection_type: ctx.connection_type.openrtb().unwrap_or(0),
        ad_position: ctx.ad_position.openrtb().unwrap_or(0),
        is_app: u8::from(ctx.is_app),
        flags: flags.bits(),
        reserved: U16Le::new(0),
    };
    out.extend_from_slice(bytemuck::bytes_of(&wire));
    let strings = [
        &ctx.user_id,
        &ctx.country,
        &ctx.region,
        &ctx.site_id,
        &ctx.domain,
    ];
    for (s, field) in strings.into_iter().zip(STRING_FIELDS) {
        write_str(out, s, field, frame)?;
    }
    let lists = [&ctx.user_segments, &ctx.categories, &ctx.extra];
    for (list, field) in lists.into_iter().zip(LIST_FIELDS) {
        if list.len() > LIST_ITEMS_MAX {
            return Err(ProtocolError::TooLong {
                field,
                offset: frame.payload_pos(out),
                len: list.len(),
                limit: LIST_ITEMS_MAX,
            });
        }
        // At most LIST_ITEMS_MAX (32).
        out.extend_from_slice(&(list.len() as u16).to_le_bytes());
        for item in list {
            write_str(out, item, field, frame)?;
        }
    }
    Ok(())
}

fn write_str(
    out: &mut Vec<u8>,
    s: &str,
    field: &'static str,
    frame: &FrameStart,
) -> Result<(), ProtocolError> {
    if s.len() > STRING_BYTES_MAX {
        return Err(ProtocolError::TooLong {
            field,
            offset: frame.payload_pos(out),
            len: s.len(),
            limit: STRING_BYTES_MAX,
        });
    }
    // At most STRING_BYTES_MAX (256).
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Decodes a `score_context` payload into a new context and its simulate
/// flag. Every check of [`decode_score_context_view`] runs before the
/// context's strings are allocated.
pub fn decode_score_context(payload: &[u8]) -> Result<(RequestContext, bool), ProtocolError> {
    let view = decode_score_context_view(payload)?;
    Ok((view.to_context(), view.simulate))
}

/// Decodes and checks a `score_context` payload without allocating.
///
/// Refused: a payload shorter than its fixed part or its strings and lists
/// ([`ProtocolError::Truncated`]), bytes after the last list
/// ([`ProtocolError::TrailingBytes`]), a string over [`STRING_BYTES_MAX`]
/// bytes or a list over [`LIST_ITEMS_MAX`] items
/// ([`ProtocolError::TooLong`]), a string that is not UTF-8, a non-finite
/// `bid_floor` or `extra_numeric`, an `is_app` other than 0 or 1, an
/// unknown flag bit or a non-zero reserved field
/// ([`ProtocolError::InvalidValue`]). Enumeration codes outside their
/// lists read as `Unknown` (`Other` for the OS), as an OpenRTB integer
/// does with [`DeviceType::from_openrtb`].
pub fn decode_score_context_view(payload: &[u8]) -> Result<ContextView<'_>, ProtocolError> {
    let mut r = Reader::new(payload);
    let wire: &ContextWire = r.pod("score_context fixed part")?;
    let bid_floor = wire.bid_floor.get();
    finite(bid_floor, "bid_floor", 0)?;
    let extra_numeric = wire.extra_numeric.map(F64Le::get);
    for (i, (&v, field)) in extra_numeric.iter().zip(EXTRA_NUMERIC_FIELDS).enumerate() {
        finite(v, field, 16 + 8 * i)?;
    }
    if wire.is_app > 1 {
        return Err(ProtocolError::InvalidValue {
            field: "is_app",
            offset: 60,
            value: u64::from(wire.is_app),
            rule: "must be 0 or 1",
        });
    }
    if wire.flags & !(SCORE_FLAG_SIMULATE | CONTEXT_FLAG_DECISION_IDS) != 0 {
        return Err(ProtocolError::InvalidValue {
            field: "flags",
            offset: 61,
            value: u64::from(wire.flags),
            rule: "only bits 0 (simulate) and 1 (decision_ids) are defined; the others must be 0",
        });
    }
    reserved_zero(&wire.reserved.0, "reserved", 62)?;
    let mut strings = [""; STRING_FIELDS.len()];
    for (s, field) in strings.iter_mut().zip(STRING_FIELDS) {
        *s = r.str(field, STRING_BYTES_MAX)?;
    }
    let mut lists = [StrList::EMPTY; LIST_FIELDS.len()];
    for (list, field) in lists.iter_mut().zip(LIST_FIELDS) {
        let offset = r.pos();
        let count = usize::from(r.u16(field)?);
        if count > LIST_ITEMS_MAX {
            return Err(ProtocolError::TooLong {
                field,
                offset,
                len: count,
                limit: LIST_ITEMS_MAX,
            });
        }
        for slot in list.items.iter_mut().take(count) {
            *slot = r.str(field, STRING_BYTES_MAX)?;
        }
        list.len = count;
    }
    r.finish()?;
    let [user_id, country, region, site_id, domain] = strings;
    let [user_segments, categories, extra] = lists;
    Ok(ContextView {
        user_id,
        country,
        region,
        site_id,
        domain,
        user_segments,
        categories,
        extra,
        device_type: DeviceType::from_openrtb(i64::from(wire.device_type)),
        os: os_from_code(wire.os),
        connection_type: ConnectionType::from_openrtb(i64::from(wire.connection_type)),
        ad_position: AdPosition::from_openrtb(i64::from(wire.ad_position)),
        is_app: wire.is_app == 1,
        placement_width: wire.placement_width.get(),
        placement_height: wire.placement_height.get(),
        bid_floor,
        timestamp: wire.timestamp.get(),
        extra_numeric,
        simulate: wire.flags & SCORE_FLAG_SIMULATE != 0,
        decision_ids: wire.flags & CONTEXT_FLAG_DECISION_IDS != 0,
    })
}

/// The flags of a `score_openrtb` request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenRtbFlags {
    /// Decide in simulation mode ([`SCORE_FLAG_SIMULATE`]).
    pub simulate: bool,
    /// Answer with a `bid_response` ([`SCORE_FLAG_BID_RESPONSE`]).
    pub bid_response: bool,
    /// Put each decided impression's decision id in the answer
    /// ([`OPENRTB_FLAG_DECISION_IDS`]).
    pub decision_ids: bool,
}

impl OpenRtbFlags {
    fn bits(self) -> u8 {
        let mut bits = 0;
        if self.simulate {
            bits |= SCORE_FLAG_SIMULATE;
        }
        if self.bid_response {
            bits |= SCORE_FLAG_BID_RESPONSE;
        }
        if self.decision_ids {
            bits |= OPENRTB_FLAG_DECISION_IDS;
        }
        bits
    }
}

/// Appends a `score_openrtb` frame carrying the OpenRTB `BidRequest`
/// document `json` as is (it is not parsed here), answered with a
/// `decision`.
///
/// Refused, leaving `out` as it was: a document over
/// [`OPENRTB_JSON_BYTES_MAX`] bytes ([`ProtocolError::TooLong`]).
pub fn encode_score_openrtb(
    out: &mut Vec<u8>,
    request_id: u64,
    json: &[u8],
    simulate: bool,
) -> Result<(), ProtocolError> {
    let flags = OpenRtbFlags {
        simulate,
        ..OpenRtbFlags::default()
    };
    encode_score_openrtb_with(out, request_id, json, flags)
}

/// [`encode_score_openrtb`] with every flag: `bid_response` asks for a
/// `bid_response` answer instead of a `decision`.
pub fn encode_score_openrtb_with(
    out: &mut Vec<u8>,
    request_id: u64,
    json: &[u8],
    flags: OpenRtbFlags,
) -> Result<(), ProtocolError> {
    if json.len() > OPENRTB_JSON_BYTES_MAX {
        return Err(ProtocolError::TooLong {
            field: "json",
            offset: OPENRTB_FIXED,
            len: json.len(),
            limit: OPENRTB_JSON_BYTES_MAX,
        });
    }
    let frame = FrameStart::begin(out, MessageType::ScoreOpenRtb, request_id);
    out.extend_from_slice(bytemuck::bytes_of(&OpenRtbWire {
        flags: flags.bits(),
        reserved: [0; 3],
    }));
    out.extend_from_slice(json);
    frame.end(out).map(drop)
}

/// Byte size of [`OpenRtbWire`], the fixed part of `score_openrtb`.
const OPENRTB_FIXED: usize = std::mem::size_of::<OpenRtbWire>();

/// Decodes a `score_openrtb` payload into the JSON document (borrowed; not
/// parsed, not checked for UTF-8: give it to
/// [`openrtb::parse_request`](crate::openrtb::parse_request)) and its
/// flags. Refused: a payload shorter than the 4-byte fixed part, an
/// unknown flag bit or a non-zero reserved byte, a document over
/// [`OPENRTB_JSON_BYTES_MAX`] bytes. Allocates nothing.
pub fn decode_score_openrtb(payload: &[u8]) -> Result<(&[u8], OpenRtbFlags), ProtocolError> {
    let mut r = Reader::new(payload);
    let wire: &OpenRtbWire = r.pod("score_openrtb fixed part")?;
    let defined = SCORE_FLAG_SIMULATE | SCORE_FLAG_BID_RESPONSE | OPENRTB_FLAG_DECISION_IDS;
    if wire.flags & !defined != 0 {
        return Err(ProtocolError::InvalidValue {
            field: "flags",
            offset: 0,
            value: u64::from(wire.flags),
            rule: "only bits 0 (simulate), 1 (bid_response) and 2 (decision_ids) are defined; \
                   the others must be 0",
        });
    }
    reserved_zero(&wire.reserved, "reserved", 1)?;
    let json = r.take(r.remaining(), "json")?;
    if json.len() > OPENRTB_JSON_BYTES_MAX {
        return Err(ProtocolError::TooLong {
            field: "json",
            offset: OPENRTB_FIXED,
            len: json.len(),
            limit: OPENRTB_JSON_BYTES_MAX,
        });
    }
    let flags = OpenRtbFlags {
        simulate: wire.flags & SCORE_FLAG_SIMULATE != 0,
        bid_response: wire.flags & SCORE_FLAG_BID_RESPONSE != 0,
        decision_ids: wire.flags & OPENRTB_FLAG_DECISION_IDS != 0,
    };
    Ok((json, flags))
}

/// Appends a `bid_response` frame: `json`, the answer's JSON object.
/// Refused, leaving `out` as it was: over [`BID_RESPONSE_BYTES_MAX`]
/// bytes.
pub fn encode_bid_response(
    out: &mut Vec<u8>,
    request_id: u64,
    json: &str,
) -> Result<(), ProtocolError> {
    if json.len() > BID_RESPONSE_BYTES_MAX {
        return Err(ProtocolError::TooLong {
            field: "json",
            offset: 0,
            len: json.len(),
            limit: BID_RESPONSE_BYTES_MAX,
        });
    }
    let frame = FrameStart::begin(out, MessageType::BidResponse, request_id);
    out.extend_from_slice(json.as_bytes());
    frame.end(out).map(drop)
}

/// Decodes a `bid_response` payload: its JSON object, checked to be UTF-8
/// within [`BID_RESPONSE_BYTES_MAX`] bytes (not parsed).
pub fn decode_bid_response(payload: &[u8]) -> Result<&str, ProtocolError> {
    if payload.len() > BID_RESPONSE_BYTES_MAX {
        return Err(ProtocolError::TooLong {
            field: "json",
            offset: 0,
            len: payload.len(),
            limit: BID_RESPONSE_BYTES_MAX,
        });
    }
    std::str::from_utf8(payload).map_err(|e| ProtocolError::InvalidUtf8 {
        field: "json",
        offset: e.valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_into_reuses_and_trims_lists() {
        let mut ctx = RequestContext {
            user_segments: vec!["a".into(), "b".into(), "c".into()],
            ..RequestContext::default()
        };
        let mut no_pool = Vec::new();
        set_list(&mut ctx.user_segments, &["x"], &mut no_pool);
        assert_eq!(ctx.user_segments, ["x"]);
        assert_eq!(no_pool.capacity(), 0, "a pool without room never grows");
        set_list(&mut ctx.user_segments, &["p", "q"], &mut no_pool);
        assert_eq!(ctx.user_segments, ["p", "q"]);
    }

    #[test]
    fn trimmed_items_wait_in_the_pool_up_to_its_capacity() {
        let long = "s".repeat(100);
        let mut list = vec![long.clone(), long.clone(), long.clone()];
        let mut pool = Vec::with_capacity(1);
        set_list(&mut list, &["x"], &mut pool);
        assert_eq!(list, ["x"]);
        assert_eq!(pool.len(), 1, "one kept, one dropped: the pool is full");
        assert!(pool[0].capacity() >= 100);
        set_list(&mut list, &["p", "q"], &mut pool);
        assert_eq!(list, ["p", "q"]);
        assert!(pool.is_empty());
        assert!(
            list[1].capacity() >= 100,
            "the new item reused the pooled string"
        );
    }
}
