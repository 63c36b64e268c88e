//! Results of a benchmark run, reported as etcd's `benchmark` tool reports them (summary,
//! response time histogram, latency percentiles, error distribution), or as JSON.

use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies (seconds) of the successful requests, errors by message, and the wall time.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub lats: Vec<f64>,
    pub errors: BTreeMap<String, usize>,
    pub total: Duration,
    /// Requests finished in each second since the start (for `--sample`).
    pub per_second: Vec<u64>,
}

const PCTLS: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

/// Summary figures of a report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub fastest: f64,
    pub slowest: f64,
    pub average: f64,
    pub stddev: f64,
    pub rps: f64,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.lats.extend(other.lats);
        for (e, n) in other.errors {
            *self.errors.entry(e).or_default() += n;
        }
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), 0);
        }
        for (i, n) in other.per_second.into_iter().enumerate() {
            self.per_second[i] += n;
        }
    }

    /// Records one request that started `since_start` after the run began.
    pub fn record(&mut self, since_start: Duration, took: Duration, err: Option<String>) {
        match err {
            Some(e) => *self.errors.entry(e).or_default() += 1,
            None => {
                self.lats.push(took.as_secs_f64());
                let sec = (since_start + took).as_secs() as usize;
                if self.per_second.len() <= sec {
                    self.per_second.resize(sec + 1, 0);
                }
                self.per_second[sec] += 1;
            }
        }
    }

    /// Sorts the latencies and computes the summary (as etcd: population stddev).
    pub fn stats(&mut self) -> Stats {
        self.lats.sort_by(|a, b| a.total_cmp(b));
        let n = self.lats.len() as f64;
        let average = if n > 0.0 {
            self.lats.iter().sum::<f64>() / n
        } else {
            0.0
        };
        let var = if n > 0.0 {
            self.lats
                .iter()
                .map(|l| (l - average) * (l - average))
                .sum::<f64>()
                / n
        } else {
            0.0
        };
        let secs = self.total.as_secs_f64();
        Stats {
            fastest: self.lats.first().copied().unwrap_or(0.0),
            slowest: self.lats.last().copied().unwrap_or(0.0),
            average,
            stddev: var.sqrt(),
            rps: if secs > 0.0 { n / secs } else { 0.0 },
        }
    }

    /// The percentiles etcd reports: the first latency at or past each rank.
    pub fn percentiles(&self) -> Vec<(f64, f64)> {
        let n = self.lats.len();
        let mut out = Vec::new();
        let mut j = 0;
        for (i, l) in self.lats.iter().enumerate() {
            if j >= PCTLS.len() {
                break;
            }
            // As etcd: at most one percentile per latency.
            let current = i as f64 * 100.0 / n as f64;
            if current >= PCTLS[j] {
                out.push((PCTLS[j], *l));
                j += 1;
            }
        }
        out
    }

    /// etcd's text report; `precise` prints full precision instead of 4 decimals.
    pub fn text(&mut self, precise: bool, sample: bool) -> String {
        let mut s = String::new();
        let st = self.stats();
        let f = |v: f64| {
            if precise {
                format!("{v}")
            } else {
                format!("{v:.4}")
            }
        };
        if !self.lats.is_empty() {
            s.push_str("\nSummary:\n");
            s.push_str(&format!(
                "  Total:\t{} secs.\n",
                f(self.total.as_secs_f64())
            ));
            s.push_str(&format!("  Slowest:\t{} secs.\n", f(st.slowest)));
            s.push_str(&format!("  Fastest:\t{} secs.\n", f(st.fastest)));
            s.push_str(&format!("  Average:\t{} secs.\n", f(st.average)));
            s.push_str(&format!("  Stddev:\t{} secs.\n", f(st.stddev)));
            s.push_str(&format!("  Requests/sec:\t{}\n", f(st.rps)));
            s.push_str("\nResponse time histogram:\n");
            for (b, c, bar) in self.histogram(&st) {
                s.push_str(&format!("  {} [{c}]\t|{bar}\n", f(b)));
            }
            s.push_str("\nLatency distribution:\n");
            for (p, v) in self.percentiles() {
                if v > 0.0 {
                    s.push_str(&format!("  {p}% in {} secs.\n", f(v)));
                }
            }
            if sample {
                s.push_str("\nRequests per second:\n");
                for (i, n) in self.per_second.iter().enumerate() {
                    s.push_str(&format!("  {i}s\t{n}\n"));
                }
            }
        }
        if !self.errors.is_empty() {
            s.push_str("\nError distribution:\n");
            for (e, n) in &self.errors {
                s.push_str(&format!("  [{n}]\t{e}\n"));
            }
        }
        s
    }

    /// Ten equal buckets between fastest and slowest (plus the slowest), bars of up to 40.
    fn histogram(&self, st: &Stats) -> Vec<(f64, usize, String)> {
        let bc = 10;
        let bs = (st.slowest - st.fastest) / bc as f64;
        let mut buckets: Vec<f64> = (0..bc).map(|i| st.fastest + bs * i as f64).collect();
        buckets.push(st.slowest);
        let mut counts = vec![0usize; bc + 1];
        let (mut bi, mut i) = (0, 0);
        while i < self.lats.len() {
            if self.lats[i] <= buckets[bi] {
                counts[bi] += 1;
                i += 1;
            } else if bi < bc {
                bi += 1;
            } else {
                break;
            }
        }
        let max = counts.iter().copied().max().unwrap_or(0);
        buckets
            .into_iter()
            .zip(counts)
            .map(|(b, c)| {
                let len = (c * 40).checked_div(max).unwrap_or(0);
                (b, c, "∎".repeat(len))
            })
            .collect()
    }

    /// The same figures for machines.
    pub fn json(&mut self) -> serde_json::Value {
        let st = self.stats();
        let pct: serde_json::Map<String, serde_json::Value> = self
            .percentiles()
            .into_iter()
            .map(|(p, v)| (format!("p{p}"), serde_json::json!(v)))
            .collect();
        serde_json::json!({
            "requests": self.lats.len(),
            "errors": self.errors.values().sum::<usize>(),
            "error_distribution": self.errors,
            "total_seconds": self.total.as_secs_f64(),
            "slowest": st.slowest,
            "fastest": st.fastest,
            "average": st.average,
            "stddev": st.stddev,
            "requests_per_second": st.rps,
            "percentiles": pct,
            "per_second": self.per_second,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(lats: &[f64], total: f64) -> Report {
        Report {
            lats: lats.to_vec(),
            total: Duration::from_secs_f64(total),
            ..Report::default()
        }
    }

    #[test]
    fn summary_histogram_and_percentiles_as_etcd_prints_them() {
        let lats: Vec<f64> = (1..=10).map(|i| i as f64 / 1000.0).collect();
        let mut r = report(&lats, 0.5);
        r.errors.insert("etcdserver: too many requests".into(), 2);
        let text = r.text(false, false);
        let expected = "\nSummary:\n  Total:\t0.5000 secs.\n  Slowest:\t0.0100 secs.\n  Fastest:\t0.0010 secs.\n  Average:\t0.0055 secs.\n  Stddev:\t0.0029 secs.\n  Requests/sec:\t20.0000\n\nResponse time histogram:\n  0.0010 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n  0.0019 [0]\t|\n  0.0028 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n  0.0037 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n  0.0046 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n  0.0055 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n  0.0064 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n  0.0073 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n  0.0082 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n  0.0091 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n  0.0100 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n\nLatency distribution:\n  10% in 0.0020 secs.\n  25% in 0.0040 secs.\n  50% in 0.0060 secs.\n  75% in 0.0090 secs.\n  90% in 0.0100 secs.\n\nError distribution:\n  [2]\tetcdserver: too many requests\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn empty_reports_print_only_errors() {
        let mut r = report(&[], 1.0);
        assert_eq!(r.text(false, false), "");
        r.errors.insert("boom".into(), 1);
        assert_eq!(r.text(false, false), "\nError distribution:\n  [1]\tboom\n");
    }
}
