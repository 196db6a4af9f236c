//! Open connections over all workers, in all and per source address: the
//! limits that keep the server within `connections_max` whichever worker
//! the kernel hands a connection to, and keep one host (a careless client
//! opening sockets in a loop, or a slowloris attacker) from taking every
//! connection slot.
//!
//! # Data layout
//!
//! One count of open connections and one map from source IP to its open
//! connections, behind one mutex shared by every worker. It is touched
//! twice per connection (accept and close), never per request, so the lock
//! is off the hot path; map entries exist only for sources with an open
//! connection, so the map holds at most `connections_max` entries and is
//! allocated for that many at start. IPv4-mapped IPv6 addresses count as
//! their IPv4 address. A connection whose peer address is unknown counts
//! in the total only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// Why [`ConnectionLimiter::try_acquire`] refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `connections_max` connections are open over all workers.
    ServerFull,
    /// The source address holds its `connections_per_source_max`.
    SourceFull,
}

/// Counts open connections, in all and per source address, against limits.
#[derive(Debug)]
pub struct ConnectionLimiter {
    connections_max: usize,
    per_source_max: u32,
    counts: Mutex<Counts>,
}

#[derive(Debug)]
struct Counts {
    open: usize,
    per_source: HashMap<IpAddr, u32>,
}

impl ConnectionLimiter {
    /// A limiter allowing `connections_max` open connections in all and
    /// `per_source_max` per source address.
    pub fn new(per_source_max: u32, connections_max: usize) -> Self {
        assert!(per_source_max > 0, "a source must be allowed a connection");
        assert!(connections_max > 0, "the server must allow a connection");
        Self {
            connections_max,
            per_source_max,
            counts: Mutex::new(Counts {
                open: 0,
                per_source: HashMap::with_capacity(connections_max),
            }),
        }
    }

    /// The limit per source address.
    pub fn per_source_max(&self) -> u32 {
        self.per_source_max
    }

    /// Takes a connection from `source` (its peer address, when known):
    /// refused, with nothing taken, when the server or the source is full.
    pub fn try_acquire(&self, source: Option<IpAddr>) -> Result<(), Refusal> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.open >= self.connections_max {
            return Err(Refusal::ServerFull);
        }
        if let Some(ip) = source {
            let count = counts.per_source.entry(ip.to_canonical()).or_insert(0);
            if *count >= self.per_source_max {
                return Err(Refusal::SourceFull);
            }
            *count += 1;
        }
        counts.open += 1;
        Ok(())
    }

    /// Gives back a connection [`Self::try_acquire`] took for `source`.
    ///
    /// # Panics
    /// When no connection (from `source`) is open: a release without its
    /// acquire.
    pub fn release(&self, source: Option<IpAddr>) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(counts.open > 0, "a released connection was open");
        counts.open -= 1;
        let Some(ip) = source else {
            return;
        };
        let ip = ip.to_canonical();
        let count = counts.per_source.get_mut(&ip);
        let count = count.expect("a released source holds a connection");
        *count -= 1;
        if *count == 0 {
            counts.per_source.remove(&ip);
        }
    }

    /// Open connections of `source`.
    pub fn open_from(&self, source: IpAddr) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .per_source
            .get(&source.to_canonical())
            .copied()
            .unwrap_or(0)
    }

    /// Open connections over all workers.
    pub fn open(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn each_source_is_limited_on_its_own_and_released_connections_count_again() {
        let limiter = ConnectionLimiter::new(2, 8);
        assert_eq!(limiter.try_acquire(Some(A)), Ok(()));
        assert_eq!(limiter.try_acquire(Some(A)), Ok(()));
        assert_eq!(
            limiter.try_acquire(Some(A)),
            Err(Refusal::SourceFull),
            "a third from the same source"
        );
        assert_eq!(limiter.try_acquire(Some(B)), Ok(()), "another source");
        limiter.release(Some(A));
        assert_eq!(limiter.open_from(A), 1);
        assert_eq!(limiter.try_acquire(Some(A)), Ok(()));
        limiter.release(Some(A));
        limiter.release(Some(A));
        assert_eq!(limiter.open_from(A), 0);
        assert_eq!(limiter.open(), 1);
    }

    #[test]
    fn the_total_holds_over_every_source_and_unknown_peers() {
        let limiter = ConnectionLimiter::new(2, 3);
        assert_eq!(limiter.try_acquire(Some(A)), Ok(()));
        assert_eq!(limiter.try_acquire(None), Ok(()));
        assert_eq!(limiter.try_acquire(Some(B)), Ok(()));
        assert_eq!(limiter.try_acquire(None), Err(Refusal::ServerFull));
        assert_eq!(limiter.try_acquire(Some(B)), Err(Refusal::ServerFull));
        assert_eq!(limiter.open_from(B), 1, "a refusal takes nothing");
        limiter.release(None);
        assert_eq!(limiter.try_acquire(Some(B)), Ok(()));
        assert_eq!(limiter.open(), 3);
    }

    #[test]
    fn an_ipv4_mapped_address_is_its_ipv4_source() {
        let limiter = ConnectionLimiter::new(1, 4);
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(limiter.try_acquire(Some(v4)), Ok(()));
        assert_eq!(limiter.try_acquire(Some(mapped)), Err(Refusal::SourceFull));
        assert_eq!(
            limiter.try_acquire(Some(IpAddr::V6(Ipv6Addr::LOCALHOST))),
            Ok(())
        );
    }

    #[test]
    #[should_panic(expected = "holds a connection")]
    fn a_release_from_a_source_without_an_acquire_is_a_bug() {
        let limiter = ConnectionLimiter::new(1, 2);
        limiter.try_acquire(None).expect("room");
        limiter.release(Some(A));
    }

    #[test]
    #[should_panic(expected = "was open")]
    fn a_release_without_an_acquire_is_a_bug() {
        ConnectionLimiter::new(1, 1).release(None);
    }
}
