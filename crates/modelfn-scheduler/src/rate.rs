//! The scale-up rate: a token bucket of instance starts per function. Lambda's rule is
//! the analogue: a burst, then a number of new execution environments per interval.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A burst of `burst` starts, refilled at `per_interval` every `interval`.
#[derive(Debug, Clone, Copy)]
pub struct ScaleRate {
    pub burst: u32,
    pub per_interval: u32,
    pub interval: Duration,
}

impl Default for ScaleRate {
    /// Lambda's documented analogue: 1000 new instances per function every 10 seconds.
    fn default() -> Self {
        ScaleRate {
            burst: 1000,
            per_interval: 1000,
            interval: Duration::from_secs(10),
        }
    }
}

pub struct TokenBucket {
    rate: ScaleRate,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: ScaleRate) -> Self {
        TokenBucket {
            rate,
            state: Mutex::new((f64::from(rate.burst), Instant::now())),
        }
    }

    fn per_sec(&self) -> f64 {
        f64::from(self.rate.per_interval) / self.rate.interval.as_secs_f64().max(1e-9)
    }

    /// Takes a token if one is there; otherwise answers how long until the next one.
    pub fn try_take(&self) -> Result<(), Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = (now - s.1).as_secs_f64() * self.per_sec();
        s.0 = (s.0 + refill).min(f64::from(self.rate.burst));
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - s.0) / self.per_sec()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_rate() {
        let b = TokenBucket::new(ScaleRate {
            burst: 2,
            per_interval: 1,
            interval: Duration::from_secs(1),
        });
        assert!(b.try_take().is_ok() && b.try_take().is_ok());
        let wait = b.try_take().unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(b.try_take().is_ok());
        assert!(b.try_take().is_err());
    }
}
