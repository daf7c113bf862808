//! `topkart loadtest`: the load bench, for any running Topkart.
//!
//! It sets its scenario up over the API (admin login, deals, buyers), drives real HTTP load in a
//! closed loop (`--connections N`) or an open loop at a fixed arrival rate (`--rate R`, latency
//! measured from each request's intended send time, so a stalling server cannot hide its tail),
//! then verifies over the API what must hold (no unit oversold or left unsold while buyers
//! asked, every 201 stored, conservation) and reports a table, JSON and an HTML page.
//!
//! - [`setup`]: the scenario's deals and buyers, created over the API.
//! - [`drive`]: the load loops and what they record.
//! - [`verify`]: the invariants checked after each scenario.
//! - [`report`]: the table, the JSON and the HTML/SVG page.

pub mod drive;
pub mod report;
pub mod setup;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::config::Secret;
pub use drive::{Load, RunResult};
pub use report::ScenarioReport;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// One deal, many more buyers than it has units: the burst.
    HotDeal,
    /// Traffic at a deal that is already sold out.
    SoldOutStorm,
    /// Many deals (`--deals`), buyers spread over them.
    ManyDeals,
    /// 90 % `GET /deals`, 10 % orders.
    BrowseAndBuy,
    /// `GET /livez` on the same connections: the HTTP ceiling of the same run.
    Baseline,
    /// Every scenario above, baseline first, in one run.
    All,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::HotDeal => "hot-deal",
            Scenario::SoldOutStorm => "sold-out-storm",
            Scenario::ManyDeals => "many-deals",
            Scenario::BrowseAndBuy => "browse-and-buy",
            Scenario::Baseline => "baseline",
            Scenario::All => "all",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LoadtestArgs {
    /// The Topkart to load.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin of that Topkart (sets the scenario up and verifies it).
    #[arg(long, env = "TOPKART_ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,
    /// That admin's password.
    #[arg(long, env = "TOPKART_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Secret,
    #[arg(long, value_enum, default_value = "hot-deal")]
    pub scenario: Scenario,
    /// Closed loop: this many connections, each sending its next request when the last returns.
    #[arg(long, conflicts_with = "rate")]
    pub connections: Option<usize>,
    /// Open loop: this many requests a second at fixed intervals, whatever the answers do.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Seconds of load per scenario, measured (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Seconds of load before the measured part of each scenario: sent, answered and verified
    /// like the rest, but reported apart (connections opening, caches filling).
    #[arg(long, default_value_t = 1)]
    pub warmup_secs: u64,
    /// Units of the hot deal (enough that it sells for the whole run: orders/s is measured).
    #[arg(long, default_value_t = 200_000)]
    pub units: i64,
    /// Buyers registered (each orders many times; the deals have no per-customer limit).
    #[arg(long, default_value_t = 200)]
    pub buyers: usize,
    /// Deals of the many-deals scenario.
    #[arg(long, default_value_t = 1_000)]
    pub deals: usize,
    /// Load-generator threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Where the JSON and HTML reports go.
    #[arg(long, default_value = "target/topkart-bench")]
    pub out_dir: PathBuf,
}

impl LoadtestArgs {
    pub fn load(&self) -> Load {
        match self.rate {
            Some(rate) => Load::Open {
                rate_per_sec: rate.max(1),
            },
            None => Load::Closed {
                connections: self.connections.unwrap_or(256).max(1),
            },
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_secs.max(1))
    }
}

/// Runs the scenario(s) the arguments name, prints and writes the reports. Fails when any
/// scenario's verification fails.
pub async fn run(args: &LoadtestArgs) -> Result<Vec<ScenarioReport>, String> {
    let login = || setup::Api::login(&args.url, &args.admin_username, &args.admin_password.0);
    let scenarios: Vec<Scenario> = match args.scenario {
        Scenario::All => vec![
            Scenario::Baseline,
            Scenario::HotDeal,
            Scenario::SoldOutStorm,
            Scenario::ManyDeals,
            Scenario::BrowseAndBuy,
        ],
        one => vec![one],
    };
    let mut reports: Vec<ScenarioReport> = Vec::new();
    let mut baseline_rate: Option<f64> = None;
    for scenario in scenarios {
        eprintln!("== {} ({})", scenario.name(), args.load().describe());
        let prepared = setup::prepare(&login().await?, scenario, args).await?;
        let result = drive::run(
            &args.url,
            &prepared.plan,
            args.load(),
            Duration::from_secs(args.warmup_secs),
            args.duration(),
            args.threads,
        )
        .await;
        let verification = verify::check(&login().await?, &prepared, &result).await?;
        let report = ScenarioReport::new(
            scenario.name(),
            args.load(),
            &result,
            verification,
            baseline_rate,
        );
        if scenario == Scenario::Baseline {
            baseline_rate = Some(report.achieved_rate);
        }
        report.print_row(reports.is_empty());
        reports.push(report);
    }
    report::write_files(&args.out_dir, &reports)
        .map_err(|error| format!("writing the reports: {error}"))?;
    eprintln!(
        "reports: {}/report.json and report.html",
        args.out_dir.display()
    );
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| !r.verification.passed)
        .map(|r| r.scenario.as_str())
        .collect();
    if failed.is_empty() {
        Ok(reports)
    } else {
        Err(format!("verification FAILED for: {}", failed.join(", ")))
    }
}
