//! The HTML page of a load-test run: what was run (date, commit, targets, settings), the table
//! of figures with what each column means, and per scenario a latency curve and a
//! second-by-second chart with its axes and legend, the warm-up shaded apart.

use std::fmt::Write as _;

use super::drive::SecondBucket;
use super::report::{RunInfo, ScenarioReport};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}\
    table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
    th{background:#f4f4f4}td.l,th.l{text-align:left}.fail{color:#b00}.ok{color:#070}\
    svg{border:1px solid #ddd;margin:8px 16px 8px 0;background:#fff}.note{color:#555;max-width:60em}\
    figure{display:inline-block;margin:0}figcaption{color:#555;font-size:12px;max-width:520px}";

pub fn html(run: &RunInfo, reports: &[ScenarioReport]) -> String {
    let mut page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Topkart load test, {date}</title>\
         <style>{STYLE}</style></head><body><h1>Topkart load test</h1>",
        date = escape(&run.date)
    );
    // What this was a run of.
    let _ = write!(
        page,
        "<table><tr><th class=l>date (UTC)</th><td class=l>{}</td></tr><tr><th class=l>commit</th><td class=l>{}</td></tr>\
         <tr><th class=l>targets</th><td class=l>{}</td></tr>",
        escape(&run.date),
        escape(run.commit),
        escape(&run.targets.join(", "))
    );
    if let Some(settings) = run.settings.as_object() {
        for (name, value) in settings {
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let _ = write!(
                page,
                "<tr><th class=l>{}</th><td class=l>{}</td></tr>",
                escape(name),
                escape(&value)
            );
        }
    }
    page.push_str("</table>");

    page.push_str(
        "<h2>Figures</h2><table><tr><th class=l>scenario</th><th class=l>load</th><th>req/s</th><th>2xx</th><th>409</th><th>429</th>\
         <th>503</th><th>lost</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>orders/s</th>\
         <th>ratio to baseline</th><th class=l>verified</th></tr>",
    );
    for r in reports {
        let (t, l) = (&r.tally, &r.latency_ms);
        let verdict = if r.verification.passed {
            "<span class=ok>ok</span>".to_owned()
        } else {
            format!(
                "<span class=fail>FAILED: {}</span>",
                escape(&r.verification.failures.join("; "))
            )
        };
        let _ = write!(
            page,
            "<tr><td class=l>{}</td><td class=l>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td>\
             <td>{:.2}</td><td>{:.2}</td><td>{:.1}</td><td>{:.0}</td><td>{}</td><td class=l>{}</td></tr>",
            r.scenario,
            escape(&r.load),
            r.achieved_rate,
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
            r.orders_per_sec,
            r.ratio_to_baseline
                .map_or("-".into(), |x| format!("{x:.2}")),
            verdict
        );
    }
    page.push_str(
        "</table><p class=note>Every figure is over the measured window only; the warm-up's \
         requests are verified like the rest but counted apart (below each scenario). <b>req/s</b>: \
         answers per second. <b>lost</b>: requests without an answer. <b>p50 … max</b>: latency \
         from when each request was meant to be sent (open loop: a stalling server cannot hide \
         its tail). <b>orders/s</b>: 201s per second while the deal sold. <b>ratio to baseline</b>: \
         the scenario's own figure (orders/s for hot-deal and many-deals, 409s per second for the \
         sold-out storm, req/s otherwise) divided by the baseline's req/s (<code>GET /livez</code> on \
         the same connections, in the same run): the share of the plain HTTP ceiling the scenario \
         keeps.</p>",
    );

    for r in reports {
        let _ = write!(page, "<h2>{} — {}</h2>", r.scenario, escape(&r.load));
        match r.warmup.latency_ms {
            Some(warm) => {
                let _ = write!(
                    page,
                    "<p class=note>Warm-up: {:.0} s, {} requests (p50 {:.2} ms, p99 {:.2} ms), kept out of the figures.</p>",
                    r.warmup.secs, r.warmup.requests, warm.p50, warm.p99
                );
            }
            None => page.push_str("<p class=note>No warm-up.</p>"),
        }
        if let Some(l) = &r.listeners {
            let memory = l.engine_bytes_per_listener.map_or_else(
                || "the engine's memory could not be read".to_owned(),
                |bytes| format!("{:.1} KiB of engine memory each", bytes / 1024.0),
            );
            let _ = write!(
                page,
                "<p class=note>{} live stock listeners held open during the run: {memory}; {} events received.</p>",
                l.listeners, l.events_received
            );
        }
        page.push_str(&percentile_chart(&r.latency_curve));
        page.push_str(&throughput_chart(&r.per_second, r.warmup.secs));
        let _ = write!(
            page,
            "<ul>{}</ul>",
            r.verification
                .checks
                .iter()
                .map(|c| format!("<li>{}</li>", escape(c)))
                .collect::<String>()
        );
    }
    page.push_str("</body></html>");
    page
}

const WIDTH: f64 = 520.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 26.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 44.0;

/// A value axis: lines and labels at 0, ½ and the top.
fn value_axis(svg: &mut String, max: f64, label: &str) {
    for share in [0.0, 0.5, 1.0] {
        let y = HEIGHT - BOTTOM - share * (HEIGHT - TOP - BOTTOM);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            y + 3.0,
            short(max * share)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"12\" y=\"{:.1}\" font-size=\"10\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{label}</text>",
        (TOP + HEIGHT - BOTTOM) / 2.0,
        (TOP + HEIGHT - BOTTOM) / 2.0
    );
}

fn short(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0}k", value / 1_000.0)
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Latency against percentile, the percentile axis in "nines" (log of 1/(1-q)).
fn percentile_chart(curve: &[(f64, f64)]) -> String {
    let nines = |q: f64| (1.0 / (1.0 - q.min(0.99999))).log10();
    let max_ms = curve.iter().map(|(_, ms)| *ms).fold(0.001, f64::max);
    let x = |q: f64| LEFT + nines(q) / 5.0 * (WIDTH - LEFT - RIGHT);
    let y = |ms: f64| HEIGHT - BOTTOM - ms / max_ms * (HEIGHT - TOP - BOTTOM);
    let points: Vec<String> = curve
        .iter()
        .map(|(q, ms)| format!("{:.1},{:.1}", x(*q), y(*ms)))
        .collect();
    let mut svg = format!(
        "<figure><svg width=\"{WIDTH}\" height=\"{HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"13\">Latency by percentile (measured window)</text>"
    );
    value_axis(&mut svg, max_ms, "latency, ms");
    for (label, q) in [
        ("0", 0.0),
        ("90", 0.9),
        ("99", 0.99),
        ("99.9", 0.999),
        ("99.99", 0.9999),
        ("99.999", 0.99999),
    ] {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"{2}\" font-size=\"10\" text-anchor=\"middle\">{label}</text>",
            x(q),
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 14.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">percentile (each step right: ten times rarer)</text>\
         <polyline fill=\"none\" stroke=\"#36c\" stroke-width=\"2\" points=\"{}\"/></svg>\
         <figcaption>How long the slowest share of requests took: at 99, one request in a hundred was slower.</figcaption></figure>",
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 10.0,
        points.join(" ")
    );
    svg
}

/// Answers per second, stacked by kind, second by second from the start; the warm-up shaded.
fn throughput_chart(seconds: &[SecondBucket], warmup_secs: f64) -> String {
    let max = seconds.iter().map(|s| s.answered).max().unwrap_or(1).max(1) as f64;
    let count = seconds.len().max(1) as f64;
    let bar = (WIDTH - LEFT - RIGHT) / count;
    let height = |n: u64| n as f64 / max * (HEIGHT - TOP - BOTTOM);
    let mut svg = format!(
        "<figure><svg width=\"{WIDTH}\" height=\"{HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"13\">Answers per second</text>"
    );
    let warm = warmup_secs.min(count);
    if warm > 0.0 {
        let _ = write!(
            svg,
            "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f3f0ff\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#64b\">warm-up</text>",
            warm * bar,
            HEIGHT - TOP - BOTTOM,
            LEFT + warm * bar / 2.0,
            TOP + 10.0
        );
    }
    value_axis(&mut svg, max, "answers / s");
    for (i, s) in seconds.iter().enumerate() {
        let x = LEFT + i as f64 * bar;
        let other = s.answered.saturating_sub(s.ok_2xx + s.conflict_409);
        let mut base = HEIGHT - BOTTOM;
        for (n, colour) in [
            (s.ok_2xx, "#3a3"),
            (s.conflict_409, "#e90"),
            (other, "#c33"),
        ] {
            if n == 0 {
                continue;
            }
            let h = height(n);
            base -= h;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{base:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"/>",
                (bar - 1.0).max(1.0)
            );
        }
    }
    let step = (count / 10.0).ceil().max(1.0) as usize;
    for i in (0..=seconds.len()).step_by(step) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{i}</text>",
            LEFT + i as f64 * bar,
            HEIGHT - BOTTOM + 14.0
        );
    }
    let legend_y = HEIGHT - 10.0;
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"{legend_y}\" font-size=\"10\">seconds from the start</text>\
         <rect x=\"{0:.1}\" y=\"{1:.1}\" width=\"9\" height=\"9\" fill=\"#3a3\"/><text x=\"{2:.1}\" y=\"{legend_y}\" font-size=\"10\">2xx</text>\
         <rect x=\"{3:.1}\" y=\"{1:.1}\" width=\"9\" height=\"9\" fill=\"#e90\"/><text x=\"{4:.1}\" y=\"{legend_y}\" font-size=\"10\">409 (sold out, …)</text>\
         <rect x=\"{5:.1}\" y=\"{1:.1}\" width=\"9\" height=\"9\" fill=\"#c33\"/><text x=\"{6:.1}\" y=\"{legend_y}\" font-size=\"10\">other (429, 503, …)</text></svg>\
         <figcaption>Each bar: the requests sent in that second, by their answer. Unanswered requests are not drawn (the table's “lost”).</figcaption></figure>",
        LEFT + 170.0,
        legend_y - 8.0,
        LEFT + 182.0,
        LEFT + 215.0,
        LEFT + 227.0,
        LEFT + 330.0,
        LEFT + 342.0,
    );
    svg
}
