//! The HTTP bidder's bounds. Each is checked where bytes arrive; what
//! passes one is refused with its own status (see [`super`]).

use cx_wire::openrtb;

/// Most bytes of one request head (request line and header fields); more
/// is answered `431` and the connection closes.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;

/// Most header fields of one request head; more is answered `431`.
pub const HEADERS_MAX: usize = 64;

/// Most body bytes one request announces (`Content-Length`), as sent
/// (compressed or not); more is answered `413` and the connection closes.
pub const BODY_BYTES_MAX: usize = openrtb::limits::REQUEST_BYTES_MAX;

/// Most bytes a gzip body inflates to: the bid request size limit. A body
/// that inflates past it (a gzip bomb) is answered `413` after inflating
/// at most this much.
pub const INFLATED_BYTES_MAX: usize = openrtb::limits::REQUEST_BYTES_MAX;

/// Most requests one connection has in flight (read, not yet answered);
/// the connection reads no further request until the oldest is answered,
/// so TCP pushes back on a client that pipelines more.
pub const IN_FLIGHT_MAX: usize = 64;

// A maximal request fits the read buffer the binary protocol allows.
const _: () = assert!(HEAD_BYTES_MAX + BODY_BYTES_MAX <= crate::conn::READ_BUFFER_MAX);
