//! The report: a table row per scenario on stderr, and `report.json` plus a self-contained
//! `report.html` (SVG latency-percentile and throughput-over-time charts).

use hdrhistogram::Histogram;
use serde::Serialize;

use super::drive::{Load, RunResult, SecondBucket, Tally};
use super::verify::Verification;

/// Quantiles drawn on the percentile chart, as "nines".
const CURVE_QUANTILES: [f64; 9] = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 0.99999];

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1_000.0;
        Self {
            p50: ms(histogram.value_at_quantile(0.5)),
            p90: ms(histogram.value_at_quantile(0.9)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p99_9: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub load: String,
    /// Open loop: the arrival rate asked for.
    pub offered_rate: Option<f64>,
    /// The measured window, after the warm-up.
    pub duration_secs: f64,
    pub warmup: Warmup,
    /// Answered requests per second.
    pub achieved_rate: f64,
    pub tally: Tally,
    pub latency_ms: Percentiles,
    pub order_latency_ms: Option<Percentiles>,
    /// Open loop: how late the generator itself began sending requests (part of every
    /// latency above): a tail here is the generator's, not the engine's.
    pub send_lag_ms: Option<Percentiles>,
    pub orders_created: u64,
    /// 201s per second while the deal(s) sold.
    pub orders_per_sec: f64,
    /// 409s per second (the sold-out storm's figure).
    pub rejections_per_sec: f64,
    /// The scenario's own figure (orders/s; rejections/s for the storm; req/s otherwise)
    /// over the baseline's req/s of the same run.
    pub ratio_to_baseline: Option<f64>,
    pub per_second: Vec<SecondBucket>,
    /// `--listeners`: what the live stock listeners cost the engine and what they saw.
    pub listeners: Option<super::listen::ListenerReport>,
    /// The generator's own CPU per request sent in the measured window (its load threads,
    /// from /proc; none where that cannot be read): whether the generator, not the engine,
    /// was the limit.
    pub generator_cpu_us_per_request: Option<f64>,
    /// (quantile, ms) points of the latency curve.
    pub latency_curve: Vec<(f64, f64)>,
    pub verification: Verification,
}

/// The run's first seconds, kept out of every other figure of the report.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Warmup {
    pub secs: f64,
    pub requests: u64,
    pub latency_ms: Option<Percentiles>,
}

impl ScenarioReport {
    pub fn new(
        scenario: &str,
        load: Load,
        result: &RunResult,
        verification: Verification,
        baseline_rate: Option<f64>,
    ) -> Self {
        // Rates are over the measured window (after the warm-up); a deal that sold out early
        // is measured while it was selling.
        let elapsed = result.elapsed.as_secs_f64().max(1e-9);
        let achieved_rate = result.tally.answered() as f64 / elapsed;
        let orders_created = result.created();
        // Orders answered just after the window (sent inside it) do not stretch it.
        let selling_secs = result.last_created_at.map_or(elapsed, |at| {
            at.saturating_sub(result.warmup)
                .as_secs_f64()
                .clamp(1e-3, elapsed)
        });
        let orders_per_sec = result.created_measured as f64 / selling_secs;
        let rejections_per_sec = result.tally.conflict_409 as f64 / elapsed;
        let own_figure = match scenario {
            "hot-deal" | "many-deals" => orders_per_sec,
            "sold-out-storm" => rejections_per_sec,
            _ => achieved_rate,
        };
        let latency_curve = CURVE_QUANTILES
            .iter()
            .map(|q| (*q, result.latency.value_at_quantile(*q) as f64 / 1_000.0))
            .chain(std::iter::once((
                1.0,
                result.latency.max() as f64 / 1_000.0,
            )))
            .collect();
        Self {
            scenario: scenario.to_owned(),
            load: load.describe(),
            offered_rate: match load {
                Load::Open { rate_per_sec } => Some(rate_per_sec as f64),
                Load::Closed { .. } => None,
            },
            duration_secs: elapsed,
            warmup: Warmup {
                secs: result.warmup.as_secs_f64(),
                requests: result.warmup_tally.answered() + result.warmup_tally.no_answer,
                latency_ms: (!result.warmup_latency.is_empty())
                    .then(|| Percentiles::of(&result.warmup_latency)),
            },
            achieved_rate,
            tally: result.tally,
            latency_ms: Percentiles::of(&result.latency),
            order_latency_ms: (!result.order_latency.is_empty())
                .then(|| Percentiles::of(&result.order_latency)),
            send_lag_ms: match load {
                Load::Open { .. } if !result.send_lag.is_empty() => {
                    Some(Percentiles::of(&result.send_lag))
                }
                _ => None,
            },
            orders_created,
            orders_per_sec,
            rejections_per_sec,
            ratio_to_baseline: baseline_rate
                .filter(|rate| *rate > 0.0)
                .map(|rate| own_figure / rate),
            per_second: result.per_second.clone(),
            generator_cpu_us_per_request: {
                let sent = result.tally.answered() + result.tally.no_answer;
                (!result.generator_cpu.is_zero() && sent > 0)
                    .then(|| result.generator_cpu.as_secs_f64() * 1e6 / sent as f64)
            },
            listeners: None,
            latency_curve,
            verification,
        }
    }

    /// One row of the table on stderr (with the header before the first).
    pub fn print_row(&self, header: bool) {
        if header {
            eprintln!(
                "{:<15} {:<28} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>8} {:>9} {:>6} {}",
                "scenario",
                "load",
                "req/s",
                "2xx",
                "409",
                "429",
                "503",
                "lost",
                "p50ms",
                "p90ms",
                "p99ms",
                "p99.9ms",
                "max ms",
                "orders/s",
                "ratio",
                "verified"
            );
        }
        let t = &self.tally;
        let l = &self.latency_ms;
        eprintln!(
            "{:<15} {:<28} {:>9.0} {:>9} {:>8} {:>8} {:>6} {:>6} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>8.1} {:>9.0} {:>6} {}",
            self.scenario,
            self.load,
            self.achieved_rate,
            t.ok_2xx,
            t.conflict_409,
            t.rate_limited_429,
            t.overloaded_503,
            t.no_answer + t.late,
            l.p50,
            l.p90,
            l.p99,
            l.p99_9,
            l.max,
            self.orders_per_sec,
            self.ratio_to_baseline
                .map_or("-".to_owned(), |r| format!("{r:.2}")),
            if self.verification.passed {
                "ok".to_owned()
            } else {
                format!("FAILED: {}", self.verification.failures.join("; "))
            }
        );
        if let Some(cpu) = self.generator_cpu_us_per_request {
            eprintln!("{:<15} the generator's own CPU: {cpu:.1} µs a request", "");
        }
        if let Some(lag) = self.send_lag_ms {
            eprintln!(
                "{:<15} the generator's own lateness, in the latencies above: p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms",
                "", lag.p99, lag.p99_9, lag.max
            );
        }
        if let Some(latency) = self.warmup.latency_ms {
            eprintln!(
                "{:<15} warm-up {:.0} s, not in the figures above: {} requests, p99 {:.2} ms, max {:.1} ms",
                "", self.warmup.secs, self.warmup.requests, latency.p99, latency.max
            );
        }
        for check in &self.verification.checks {
            eprintln!("{:<15} ✓ {check}", "");
        }
    }
}

/// What a report was a run of: when, of which build, against what, with which settings.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// RFC 3339, when the run began.
    pub date: String,
    /// The commit `topkart` was built from.
    pub commit: &'static str,
    pub targets: Vec<String>,
    /// The command line's settings, as given or defaulted.
    pub settings: serde_json::Value,
}

/// The JSON report: the run, then one entry a scenario.
#[derive(Serialize)]
pub struct Report<'a> {
    pub run: &'a RunInfo,
    pub scenarios: &'a [ScenarioReport],
}
