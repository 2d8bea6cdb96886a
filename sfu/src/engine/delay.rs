//! How long forwarded media spent in the server: a histogram of delays from a publisher
//! packet's arrival to the moment its copy for one viewer was handed to the kernel.
//!
//! Buckets follow a 1-1.5-2-3-5-7 series from 10 µs to 10 s, fine enough to say whether a
//! percentile is under 1 ms, coarse enough that recording is a short binary search.

use std::time::Duration;

/// Upper bounds of the buckets in nanoseconds; a last, unbounded bucket follows.
const BOUNDS_NS: [u64; 37] = {
    const STEPS: [u64; 6] = [10, 15, 20, 30, 50, 70];
    let mut bounds = [0u64; 37];
    let mut decade = 1_000; // 10 µs = 10 x 1 000 ns
    let mut i = 0;
    while i < 36 {
        bounds[i] = STEPS[i % 6] * decade;
        if i % 6 == 5 {
            decade *= 10;
        }
        i += 1;
    }
    bounds[36] = 10_000_000_000;
    bounds
};

/// Delays counted per bucket, with their sum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DelayHistogram {
    /// Per bucket of [`DelayHistogram::bounds`], then one for longer delays.
    counts: Vec<u64>,
    sum_ns: u64,
}

impl Default for DelayHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BOUNDS_NS.len() + 1],
            sum_ns: 0,
        }
    }
}

impl DelayHistogram {
    /// The buckets' upper bounds (the last bucket, beyond them, has none).
    pub fn bounds() -> impl Iterator<Item = Duration> {
        BOUNDS_NS.iter().map(|&ns| Duration::from_nanos(ns))
    }

    pub fn record(&mut self, delay: Duration) {
        let ns = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NS.partition_point(|&bound| bound < ns);
        self.counts[bucket] += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &DelayHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }

    /// A histogram read back from its exposition: the cumulative count at or below each
    /// bound of [`DelayHistogram::bounds`] then in all (`le="+Inf"`), and the sum. `None` when
    /// the number of buckets is not this histogram's, or a cumulative count is below the one
    /// before it.
    pub fn from_cumulative(cumulative: &[u64], sum: Duration) -> Option<Self> {
        if cumulative.len() != BOUNDS_NS.len() + 1 {
            return None;
        }
        let mut counts = Vec::with_capacity(cumulative.len());
        let mut below = 0;
        for &total in cumulative {
            counts.push(total.checked_sub(below)?);
            below = total;
        }
        Some(Self {
            counts,
            sum_ns: u64::try_from(sum.as_nanos()).unwrap_or(u64::MAX),
        })
    }

    /// What was recorded since `earlier`, a reading of the same histogram.
    pub fn since(&self, earlier: &DelayHistogram) -> DelayHistogram {
        Self {
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            sum_ns: self.sum_ns.saturating_sub(earlier.sum_ns),
        }
    }

    /// Empties it, keeping its buckets' memory.
    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.sum_ns = 0;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns)
    }

    /// Per bucket: its upper bound (`None` for the last) and the delays at or below it.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<Duration>, u64)> + '_ {
        let bounds = Self::bounds().map(Some).chain(std::iter::once(None));
        bounds.zip(self.counts.iter().scan(0u64, |total, &n| {
            *total += n;
            Some(*total)
        }))
    }

    /// The upper bound of the bucket the `q` quantile (0..=1) falls in: the delay that at
    /// least that share of the recorded ones did not exceed. `None` when empty, or when the
    /// quantile lies beyond the last bound.
    pub fn quantile_bound(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let wanted = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        self.cumulative()
            .find(|&(_, below)| below >= wanted)
            .and_then(|(bound, _)| bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_rise_in_a_one_to_seven_series() {
        let us: Vec<u64> = DelayHistogram::bounds()
            .take(8)
            .map(|d| d.as_micros() as u64)
            .collect();
        assert_eq!(us, [10, 15, 20, 30, 50, 70, 100, 150]);
        let all: Vec<Duration> = DelayHistogram::bounds().collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert!(all.contains(&Duration::from_millis(1)));
        assert_eq!(all.last(), Some(&Duration::from_secs(10)));
    }

    #[test]
    fn quantiles_name_the_bucket_they_fall_in() {
        let mut h = DelayHistogram::default();
        assert_eq!(h.quantile_bound(0.5), None);
        for _ in 0..98 {
            h.record(Duration::from_micros(400)); // bucket up to 500 µs
        }
        h.record(Duration::from_micros(1000)); // exactly on a bound: that bucket
        h.record(Duration::from_secs(60)); // beyond every bound
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile_bound(0.5), Some(Duration::from_micros(500)));
        assert_eq!(h.quantile_bound(0.98), Some(Duration::from_micros(500)));
        assert_eq!(h.quantile_bound(0.99), Some(Duration::from_millis(1)));
        assert_eq!(
            h.quantile_bound(1.0),
            None,
            "the slowest is beyond the last bound"
        );
        assert_eq!(
            h.sum(),
            Duration::from_micros(98 * 400 + 1000) + Duration::from_secs(60)
        );
    }

    #[test]
    fn merging_adds_and_clearing_empties() {
        let mut a = DelayHistogram::default();
        let mut b = DelayHistogram::default();
        a.record(Duration::from_micros(5));
        b.record(Duration::from_micros(5));
        b.record(Duration::from_millis(3));
        a.merge(&b);
        assert_eq!(a.count(), 3);
        let cumulative: Vec<u64> = a.cumulative().map(|(_, n)| n).collect();
        assert_eq!(cumulative[0], 2, "both 5 µs delays are at or below 10 µs");
        assert_eq!(*cumulative.last().expect("buckets"), 3);
        a.clear();
        assert_eq!(a, DelayHistogram::default());
    }

    /// What /metrics shows of a histogram reads back into the same histogram, and two
    /// readings give what was recorded between them.
    #[test]
    fn cumulative_counts_read_back_and_readings_subtract() {
        let mut h = DelayHistogram::default();
        h.record(Duration::from_micros(12));
        let earlier = h.clone();
        h.record(Duration::from_millis(2));
        h.record(Duration::from_secs(20));
        let cumulative: Vec<u64> = h.cumulative().map(|(_, n)| n).collect();
        let read = DelayHistogram::from_cumulative(&cumulative, h.sum()).expect("all buckets");
        assert_eq!(read, h);
        let between = read.since(&earlier);
        assert_eq!(between.count(), 2);
        assert_eq!(between.quantile_bound(0.5), Some(Duration::from_millis(2)));
        assert_eq!(
            DelayHistogram::from_cumulative(&cumulative[1..], h.sum()),
            None,
            "a bucket short"
        );
        let mut falling = cumulative.clone();
        falling[3] = 0;
        assert_eq!(DelayHistogram::from_cumulative(&falling, h.sum()), None);
    }
}
