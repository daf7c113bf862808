//! `topkart loadtest`: the load bench, for any running Topkart.
//!
//! It sets its scenario up over the API (admin login, deals, buyers), drives real HTTP load in a
//! closed loop (`--connections N`) or an open loop at a fixed arrival rate (`--rate R`, latency
//! measured from each request's intended send time, so a stalling server cannot hide its tail),
//! then verifies over the API what must hold (no unit oversold or left unsold while buyers
//! asked, every 201 stored, conservation) and reports a table, JSON and an HTML page.
//!
//! - [`setup`]: the scenario's deals and buyers, created over the API.
//! - [`drive`]: the load loops and what they record; [`client`]: their HTTP/1.1 client.
//! - [`verify`]: the invariants checked after each scenario.
//! - [`report`]: the table, the JSON and the HTML/SVG page.

pub mod args;
pub mod client;
pub mod drive;
pub mod listen;
pub mod page;
pub mod report;
pub mod setup;
pub mod verify;

use std::time::Duration;

pub use args::{LoadtestArgs, Scenario};
pub use drive::{Load, RunResult};
pub use report::ScenarioReport;

/// Runs the scenario(s) the arguments name, prints and writes the reports. Fails when any
/// scenario's verification fails.
pub async fn run(args: &LoadtestArgs) -> Result<Vec<ScenarioReport>, String> {
    let started = chrono::Utc::now();
    for url in &args.urls {
        let usable = url
            .parse::<actix_web::http::Uri>()
            .is_ok_and(|uri| uri.scheme_str() == Some("http") && uri.host().is_some());
        if !usable {
            return Err(format!(
                "--url {url:?} is not an http:// URL such as http://127.0.0.1:8080"
            ));
        }
    }
    // One tag for the whole run: its deals and buyers are marked with it in the store.
    let tag = format!("loadtest-{}", crate::auth::random_hex(4));
    let login = || async {
        let mut api =
            setup::Api::login(&args.urls[0], &args.admin_username, &args.admin_password.0).await?;
        api.tag = tag.clone();
        Ok::<_, String>(api)
    };
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
        let deal_ids = prepared.plan.deal_ids();
        let listeners = match deal_ids.first() {
            Some(deal_id) if args.listeners > 0 => {
                Some(listen::Listeners::open(&args.urls[0], *deal_id, args.listeners).await?)
            }
            _ => None,
        };
        let result = drive::run(
            &args.urls,
            &prepared.plan,
            args.load(),
            Duration::from_secs(args.warmup_secs),
            args.duration(),
            args.threads(),
        )
        .await?;
        let listened = listeners.map(listen::Listeners::close);
        let admin = login().await?;
        let verification = verify::check(&admin, &prepared, &result).await?;
        // Verified: the run's deals stop selling and leave the deal list (they stay in the
        // store, marked with the run's tag).
        admin.close_deals(&deal_ids).await?;
        let mut report = ScenarioReport::new(
            scenario.name(),
            args.load(),
            &result,
            verification,
            baseline_rate,
        );
        report.listeners = listened;
        if scenario == Scenario::Baseline {
            baseline_rate = Some(report.achieved_rate);
        }
        report.print_row(reports.is_empty());
        reports.push(report);
    }
    // Each run its own folder: a run never overwrites the last one's report.
    let dir = args
        .out_dir
        .join(format!("run-{}", started.format("%Y%m%dT%H%M%SZ")));
    let run = report::RunInfo {
        date: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        commit: env!("TOPKART_GIT_COMMIT"),
        targets: args.urls.clone(),
        settings: args.settings(),
    };
    write_files(&dir, &run, &reports).map_err(|error| format!("writing the reports: {error}"))?;
    eprintln!(
        "reports: {}/report.json and report.html; this run's deals (closed) and buyers are marked {tag} in the engine's store",
        dir.display()
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

/// Writes `report.json` and `report.html` (`page`) into `dir`.
fn write_files(
    dir: &std::path::Path,
    run: &report::RunInfo,
    reports: &[ScenarioReport],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let report = report::Report {
        run,
        scenarios: reports,
    };
    let json = serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), json)?;
    std::fs::write(dir.join("report.html"), page::html(run, reports))
}
