//! What one caller can make Gatehouse do: token buckets that cap how fast
//! clients may register (per source address and in all), so a flood of
//! registrations cannot fill the store or the person's screen. (Open consent
//! requests and sessions have caps of their own where they are created.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::clock::{UnixMs, MINUTE, SECOND};

/// A bucket of `capacity` tokens refilled at `per_minute`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub capacity: f64,
    pub per_minute: f64,
}

/// Registrations from one source address: a burst of 20, then 10 a minute.
pub const REGISTRATION_PER_SOURCE: Rate = Rate {
    capacity: 20.0,
    per_minute: 10.0,
};
/// Registrations from everyone together: a burst of 60, then 30 a minute.
pub const REGISTRATION_TOTAL: Rate = Rate {
    capacity: 60.0,
    per_minute: 30.0,
};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: UnixMs,
}

impl Bucket {
    /// Takes a token at `now`, or says how many milliseconds until one is there.
    fn take(&mut self, rate: Rate, now: UnixMs) -> Result<(), UnixMs> {
        let elapsed = (now - self.at).max(0) as f64;
        self.tokens = (self.tokens + elapsed * rate.per_minute / MINUTE as f64).min(rate.capacity);
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) * MINUTE as f64 / rate.per_minute;
            Err(wait.ceil() as UnixMs)
        }
    }

    /// Whether it has refilled by `now`: then it says no more than no bucket.
    fn is_full(&self, rate: Rate, now: UnixMs) -> bool {
        let elapsed = (now - self.at).max(0) as f64;
        self.tokens + elapsed * rate.per_minute / MINUTE as f64 >= rate.capacity
    }
}

/// Past this many source addresses remembered, those whose buckets have
/// refilled are forgotten (a local caller can use any of 16 million
/// loopback addresses; each new one must not cost memory for ever).
const MAX_SOURCES: usize = 1024;

/// The registration limits of one running Gatehouse.
#[derive(Default)]
pub struct Registrations {
    buckets: Mutex<(Option<Bucket>, HashMap<IpAddr, Bucket>)>,
}

impl Registrations {
    /// Whether `source` may register now; else the seconds to wait.
    pub fn allow(&self, source: IpAddr, now: UnixMs) -> Result<(), u64> {
        let mut guard = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_source) = &mut *guard;
        let fresh = |rate: Rate| Bucket {
            tokens: rate.capacity,
            at: now,
        };
        let mut mine = per_source
            .get(&source)
            .copied()
            .unwrap_or_else(|| fresh(REGISTRATION_PER_SOURCE));
        let mut all = total.unwrap_or_else(|| fresh(REGISTRATION_TOTAL));
        // Both must allow it; neither is charged for a refusal (and a source
        // refused at its first try is not remembered).
        let result = mine
            .take(REGISTRATION_PER_SOURCE, now)
            .and_then(|()| all.take(REGISTRATION_TOTAL, now));
        if result.is_ok() {
            per_source.insert(source, mine);
            *total = Some(all);
        }
        if per_source.len() > MAX_SOURCES {
            per_source.retain(|_, b| !b.is_full(REGISTRATION_PER_SOURCE, now));
        }
        result.map_err(|wait_ms| (wait_ms / SECOND + 1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limits = Registrations::default();
        let me: IpAddr = "127.0.0.1".parse().unwrap();
        for i in 0..20 {
            assert!(limits.allow(me, 0).is_ok(), "{i}");
        }
        let wait = limits.allow(me, 0).unwrap_err();
        assert!((5..=7).contains(&wait), "one more in about 6 s: {wait}");
        assert!(limits.allow(me, 5_000).is_err());
        assert!(limits.allow(me, 6_000).is_ok(), "refilled at 10 a minute");
    }

    #[test]
    fn every_source_together_is_capped_too() {
        let limits = Registrations::default();
        let mut allowed = 0;
        for i in 0..10u8 {
            let source: IpAddr = format!("127.0.0.{}", i + 1).parse().unwrap();
            allowed += (0..20).filter(|_| limits.allow(source, 0).is_ok()).count();
        }
        assert_eq!(allowed, 60, "the total burst, whatever the sources");
    }

    #[test]
    fn sources_that_come_and_go_do_not_pile_up() {
        let limits = Registrations::default();
        let remembered = |l: &Registrations| l.buckets.lock().unwrap().1.len();
        // Refused ones (the total spent) are not remembered at all.
        for i in 0..100_000u32 {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x7f00_0000 | i));
            let _ = limits.allow(source, 0);
        }
        assert_eq!(remembered(&limits), 60, "only those that registered");
        // Allowed ones are forgotten once their buckets are full again.
        let minute = |m: i64| m * MINUTE;
        for m in 1..=60 {
            for i in 0..40u32 {
                let source =
                    IpAddr::from(std::net::Ipv4Addr::from(0x7f01_0000 | (m as u32) << 8 | i));
                let _ = limits.allow(source, minute(m));
            }
        }
        assert!(
            remembered(&limits) <= MAX_SOURCES + 1,
            "{}",
            remembered(&limits)
        );
    }
}
