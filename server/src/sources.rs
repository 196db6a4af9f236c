//! Open connections per source address, over all workers: the limit that
//! keeps one host (a careless client opening sockets in a loop, or a
//! slowloris attacker) from taking every connection slot.
//!
//! # Data layout
//!
//! One map from source IP to its open connections, behind one mutex shared
//! by every worker. It is touched twice per connection (accept and close),
//! never per request, so the lock is off the hot path; entries exist only
//! for sources with an open connection, so the map holds at most
//! `connections_max` entries and is allocated for that many at start.
//! IPv4-mapped IPv6 addresses count as their IPv4 address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// Counts open connections per source address against a limit.
#[derive(Debug)]
pub struct SourceLimiter {
    per_source_max: u32,
    counts: Mutex<HashMap<IpAddr, u32>>,
}

impl SourceLimiter {
    /// A limiter allowing `per_source_max` connections per source address,
    /// sized for `connections_max` open connections in all.
    pub fn new(per_source_max: u32, connections_max: usize) -> Self {
        assert!(per_source_max > 0, "a source must be allowed a connection");
        Self {
            per_source_max,
            counts: Mutex::new(HashMap::with_capacity(connections_max)),
        }
    }

    /// The limit per source address.
    pub fn per_source_max(&self) -> u32 {
        self.per_source_max
    }

    /// Takes a connection for `source`: `false` (and nothing taken) when
    /// the source already holds [`Self::per_source_max`] of them.
    pub fn try_acquire(&self, source: IpAddr) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(source.to_canonical()).or_insert(0);
        if *count >= self.per_source_max {
            return false;
        }
        *count += 1;
        true
    }

    /// Gives back a connection [`Self::try_acquire`] took for `source`.
    ///
    /// # Panics
    /// When `source` holds no connection: a release without its acquire.
    pub fn release(&self, source: IpAddr) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let source = source.to_canonical();
        let count = counts.get_mut(&source);
        let count = count.expect("a released source holds a connection");
        *count -= 1;
        if *count == 0 {
            counts.remove(&source);
        }
    }

    /// Open connections of `source`.
    pub fn open_from(&self, source: IpAddr) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(&source.to_canonical()).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn each_source_is_limited_on_its_own_and_released_connections_count_again() {
        let limiter = SourceLimiter::new(2, 8);
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        assert!(limiter.try_acquire(a) && limiter.try_acquire(a));
        assert!(!limiter.try_acquire(a), "a third from the same source");
        assert!(limiter.try_acquire(b), "another source is not affected");
        limiter.release(a);
        assert_eq!(limiter.open_from(a), 1);
        assert!(limiter.try_acquire(a));
        limiter.release(a);
        limiter.release(a);
        assert_eq!(limiter.open_from(a), 0);
    }

    #[test]
    fn an_ipv4_mapped_address_is_its_ipv4_source() {
        let limiter = SourceLimiter::new(1, 4);
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert!(limiter.try_acquire(v4));
        assert!(!limiter.try_acquire(mapped));
        assert!(limiter.try_acquire(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }

    #[test]
    #[should_panic(expected = "holds a connection")]
    fn a_release_without_an_acquire_is_a_bug() {
        SourceLimiter::new(1, 1).release(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
