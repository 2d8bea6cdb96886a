//! The Prometheus text format, and nothing else: each subsystem returns its metric families
//! ([`Family`]) and `GET /metrics` renders them all ([`render`]). Subsystems depend on this
//! module; it depends on none of them.

use std::fmt::Write as _;

use sfu::engine::delay::DelayHistogram;

/// Prometheus metric types r58 exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's value: counts print as integers, measurements as decimals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Count(u64),
    Real(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Count(v)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Count(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

/// One sample: `r58_{family name}{suffix}{labels} {value}`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    /// `_bucket`, `_sum`, `_count` for histograms; empty otherwise.
    suffix: &'static str,
    /// Empty or a `{key="value",...}` set.
    labels: String,
    value: Value,
}

/// One metric family: name (without the `r58_` prefix), help, type and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<Sample>,
}

impl Family {
    pub fn new(kind: Kind, name: &str, help: &str) -> Self {
        Self {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            samples: Vec::new(),
        }
    }

    /// A counter with one unlabelled sample.
    pub fn counter(name: &str, help: &str, value: impl Into<Value>) -> Self {
        Self::new(Kind::Counter, name, help).with("", value)
    }

    /// A gauge with one unlabelled sample.
    pub fn gauge(name: &str, help: &str, value: impl Into<Value>) -> Self {
        Self::new(Kind::Gauge, name, help).with("", value)
    }

    /// Adds a sample with `labels` (empty, or `{key="value",...}`).
    pub fn with(mut self, labels: impl Into<String>, value: impl Into<Value>) -> Self {
        self.push(labels, value);
        self
    }

    pub fn push(&mut self, labels: impl Into<String>, value: impl Into<Value>) {
        self.samples.push(Sample {
            suffix: "",
            labels: labels.into(),
            value: value.into(),
        });
    }

    /// A histogram of delays in seconds, from a [`DelayHistogram`].
    pub fn delay_histogram(name: &str, help: &str, delays: &DelayHistogram) -> Self {
        let mut family = Self::new(Kind::Histogram, name, help);
        for (bound, count) in delays.cumulative() {
            let le = bound.map_or("+Inf".to_owned(), |b| b.as_secs_f64().to_string());
            family.samples.push(Sample {
                suffix: "_bucket",
                labels: format!("{{le=\"{le}\"}}"),
                value: Value::Count(count),
            });
        }
        family.samples.push(Sample {
            suffix: "_sum",
            labels: String::new(),
            value: Value::Real(delays.sum().as_secs_f64()),
        });
        family.samples.push(Sample {
            suffix: "_count",
            labels: String::new(),
            value: Value::Count(delays.count()),
        });
        family
    }
}

/// The text exposition of `families`, in order.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let name = &f.name;
        let _ = writeln!(out, "# HELP r58_{name} {}", f.help);
        let _ = writeln!(out, "# TYPE r58_{name} {}", f.kind.as_str());
        for s in &f.samples {
            let _ = match s.value {
                Value::Count(v) => writeln!(out, "r58_{name}{}{} {v}", s.suffix, s.labels),
                Value::Real(v) => writeln!(out, "r58_{name}{}{} {v}", s.suffix, s.labels),
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let mut delays = DelayHistogram::default();
        delays.record(Duration::from_micros(300));
        let text = render(&[
            Family::counter("a_total", "As.", 3u64),
            Family::new(Kind::Gauge, "b", "Bs by kind.")
                .with("{kind=\"x\"}", 1u64)
                .with("{kind=\"y\"}", 2.5),
            Family::delay_histogram("d_seconds", "Ds.", &delays),
        ]);
        assert!(text.starts_with(
            "# HELP r58_a_total As.\n# TYPE r58_a_total counter\nr58_a_total 3\n\
             # HELP r58_b Bs by kind.\n# TYPE r58_b gauge\nr58_b{kind=\"x\"} 1\nr58_b{kind=\"y\"} 2.5\n\
             # HELP r58_d_seconds Ds.\n# TYPE r58_d_seconds histogram\n"
        ));
        assert!(text.contains("r58_d_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("r58_d_seconds_count 1\n"));
    }
}
