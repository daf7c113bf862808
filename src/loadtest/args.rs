//! What `topkart loadtest` takes: the target, the scenario, the load's shape and size.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, ValueEnum};

use crate::config::Secret;

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
    /// The Topkart to load. Repeat it for a cluster's nodes (`--url A --url B …`): the requests
    /// go to them in turn; the set-up and the verification use the first.
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub urls: Vec<String>,
    /// An admin of that Topkart (sets the scenario up and verifies it).
    #[arg(long, env = "TOPKART_ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,
    /// That admin's password: the engine's `TOPKART_ADMIN_PASSWORD` for its bootstrap admin
    /// (the load test creates its deals and buyers as this admin).
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
    /// Live stock listeners (`GET /deals/{id}/events`) held open on the scenario's deal while
    /// it runs; the report gives the engine's memory with them and the events they got. Run
    /// once with and once without to see what they cost the orders.
    #[arg(long, default_value_t = 0)]
    pub listeners: usize,
    /// Load-generator threads (default: one per core this machine has).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024).map(usize::from))]
    pub threads: Option<usize>,
    /// Where the JSON and HTML reports go.
    #[arg(long, default_value = "target/topkart-bench")]
    pub out_dir: PathBuf,
}

impl LoadtestArgs {
    /// The run's settings for its report (the password left out).
    pub fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": self.scenario.name(),
            "load": self.load().describe(),
            "duration_secs": self.duration_secs,
            "warmup_secs": self.warmup_secs,
            "units": self.units,
            "buyers": self.buyers,
            "deals": self.deals,
            "threads": self.threads(),
            "listeners": self.listeners,
            "admin_username": self.admin_username,
        })
    }

    /// Generator threads: as asked, or one per core.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_secs.max(1))
    }
}
