//! The backtest report: per strategy the trades, P&L, win rate, max drawdown, Sharpe and
//! exposure over time, as `report.json` and a self-contained `report.html` (inline CSS and SVG,
//! nothing fetched).
//!
//! Deterministic: every map is a `BTreeMap`, nothing reads the wall clock or the paths given,
//! money is the exact decimal string, ratios are rounded to 6 decimal places, and the HTML
//! formats every number with a fixed number of decimals.
//!
//! Definitions:
//! * a strategy's **P&L** is its realised P&L (closed and settled positions, fees included)
//!   plus the unrealised P&L of its open positions marked at the best bid; its **equity** is
//!   `initial_cash + P&L` (the strategies share one account; each is judged as if it had the
//!   whole of it);
//! * **max drawdown**: the largest fall of that equity from its running peak, in USD and as a
//!   fraction of the peak (the account's from the engine's equity points);
//! * **Sharpe** (`sharpe_per_step`): mean over standard deviation (sample) of the step-to-step
//!   returns of that equity, not annualised (steps are ticks, not days); `null` with fewer than
//!   two steps or no variation;
//! * **win rate**: closed positions (each partial sale counts once) with a positive realised
//!   P&L over closed positions; `null` before any closed;
//! * the **curve** holds at most 2,000 points: past that every other point is dropped and the
//!   stride doubles (`curve_stride`), the last step always kept. The figures above are
//!   computed over every step, not the kept points.

use super::{decision_kind, DataSummary};
use crate::config::EngineConfig;
use crate::engine::{Engine, StepReport};
use crate::portfolio::ClosedPosition;
use crate::strategy::Strategy;
use crate::Ts;
use polytape_core::Side;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The report's version, bumped when its shape changes.
pub const REPORT_FORMAT: u32 = 1;

/// Most curve points kept before thinning.
const MAX_CURVE_POINTS: usize = 2000;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: u32,
    /// What was read.
    pub data: DataSummary,
    /// The configuration run (defaults filled in).
    pub config: EngineConfig,
    pub total: Totals,
    /// By strategy name: every enabled strategy, traded or not.
    pub strategies: BTreeMap<String, StrategyReport>,
    /// Steps between two kept curve points.
    pub curve_stride: u64,
    pub curve: Vec<CurvePoint>,
}

/// The account as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub steps: u64,
    pub first_ts: Option<Ts>,
    pub last_ts: Option<Ts>,
    pub initial_cash: Decimal,
    pub final_cash: Decimal,
    pub final_equity: Decimal,
    pub pnl: Decimal,
    pub realised: Decimal,
    pub unrealised: Decimal,
    pub fees: Decimal,
    pub fills: u64,
    pub closed: u64,
    pub wins: u64,
    pub win_rate: Option<f64>,
    pub open_positions: u64,
    /// Highest cost of open positions at the end of a step.
    pub max_exposure: Decimal,
    /// Largest `(peak − equity) / peak` of the account.
    pub max_drawdown: Decimal,
    pub sharpe_per_step: Option<f64>,
}

/// One strategy's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyReport {
    pub description: String,
    pub version: u32,
    /// The parameters in effect (defaults filled in).
    pub params: serde_json::Value,
    pub signals: u64,
    /// What became of the signals: `ordered`, or the rejection (`max_exposure`, …).
    pub decisions: BTreeMap<String, u64>,
    pub fills: u64,
    pub bought_usd: Decimal,
    pub sold_usd: Decimal,
    pub fees: Decimal,
    pub closed: u64,
    pub wins: u64,
    pub win_rate: Option<f64>,
    pub realised: Decimal,
    pub unrealised: Decimal,
    pub pnl: Decimal,
    pub open_positions: u64,
    /// Cost of the open positions at the end.
    pub exposure: Decimal,
    pub max_exposure: Decimal,
    pub max_drawdown_usd: Decimal,
    pub max_drawdown: Decimal,
    pub sharpe_per_step: Option<f64>,
    /// Closed (sold or settled) positions, in the order they closed.
    pub trades: Vec<ClosedPosition>,
}

/// One strategy at one curve point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyPoint {
    pub pnl: Decimal,
    pub exposure: Decimal,
}

/// The account, and each strategy, at the end of a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    pub ts: Ts,
    pub cash: Decimal,
    pub equity: Decimal,
    pub exposure: Decimal,
    pub drawdown: Decimal,
    pub strategies: BTreeMap<String, StrategyPoint>,
}

/// Mean and variance by Welford's method.
#[derive(Debug, Clone, Copy, Default)]
struct Running {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Running {
    fn add(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Mean over sample standard deviation.
    fn sharpe(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let sd = (self.m2 / (self.n - 1) as f64).sqrt();
        (sd > 1e-12).then(|| round6(self.mean / sd))
    }
}

/// `x` rounded to 6 decimal places, never `-0`; `None` when not finite.
fn round6(x: f64) -> f64 {
    let r = (x * 1e6).round() / 1e6;
    if r == 0.0 || !r.is_finite() {
        0.0
    } else {
        r
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| round6(num as f64 / den as f64))
}

/// The return from `from` to `to`.
fn step_return(from: Decimal, to: Decimal) -> Option<f64> {
    if from <= Decimal::ZERO {
        return None;
    }
    ((to - from) / from).to_f64()
}

#[derive(Debug, Clone)]
struct StrategyTally {
    report: StrategyReport,
    peak: Decimal,
    last_equity: Decimal,
    returns: Running,
}

/// The curve, thinned as it grows.
#[derive(Debug, Clone)]
struct Curve {
    stride: u64,
    n: u64,
    points: Vec<CurvePoint>,
    /// The newest point not kept, appended at the end.
    last: Option<CurvePoint>,
}

impl Curve {
    fn push(&mut self, p: CurvePoint) {
        if self.n.is_multiple_of(self.stride) {
            self.points.push(p);
            self.last = None;
        } else {
            self.last = Some(p);
        }
        self.n += 1;
        if self.points.len() >= MAX_CURVE_POINTS {
            let kept: Vec<CurvePoint> = self.points.iter().step_by(2).cloned().collect();
            self.points = kept;
            self.stride *= 2;
        }
    }

    fn finish(mut self) -> (u64, Vec<CurvePoint>) {
        if let Some(p) = self.last.take() {
            self.points.push(p);
        }
        (self.stride, self.points)
    }
}

/// The figures gathered step by step.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    config: EngineConfig,
    strategies: BTreeMap<String, StrategyTally>,
    pub(crate) steps: u64,
    pub(crate) rows_out_of_order: u64,
    pub(crate) rows_unknown_market: u64,
    pub(crate) rows_after_settlement: u64,
    pub(crate) rows_other_token: u64,
    first_ts: Option<Ts>,
    last_ts: Option<Ts>,
    fills: u64,
    fees: Decimal,
    closed: u64,
    wins: u64,
    realised: Decimal,
    max_exposure: Decimal,
    max_drawdown: Decimal,
    last_equity: Decimal,
    returns: Running,
    curve: Curve,
}

impl Tally {
    pub(crate) fn new(config: &EngineConfig, strategies: &[Box<dyn Strategy>]) -> Tally {
        let strategies = strategies
            .iter()
            .map(|s| {
                let report = StrategyReport {
                    description: s.description().to_string(),
                    version: s.version(),
                    params: s.params(),
                    signals: 0,
                    decisions: BTreeMap::new(),
                    fills: 0,
                    bought_usd: Decimal::ZERO,
                    sold_usd: Decimal::ZERO,
                    fees: Decimal::ZERO,
                    closed: 0,
                    wins: 0,
                    win_rate: None,
                    realised: Decimal::ZERO,
                    unrealised: Decimal::ZERO,
                    pnl: Decimal::ZERO,
                    open_positions: 0,
                    exposure: Decimal::ZERO,
                    max_exposure: Decimal::ZERO,
                    max_drawdown_usd: Decimal::ZERO,
                    max_drawdown: Decimal::ZERO,
                    sharpe_per_step: None,
                    trades: Vec::new(),
                };
                let tally = StrategyTally {
                    report,
                    peak: config.initial_cash,
                    last_equity: config.initial_cash,
                    returns: Running::default(),
                };
                (s.name().to_string(), tally)
            })
            .collect();
        Tally {
            config: config.clone(),
            strategies,
            steps: 0,
            rows_out_of_order: 0,
            rows_unknown_market: 0,
            rows_after_settlement: 0,
            rows_other_token: 0,
            first_ts: None,
            last_ts: None,
            fills: 0,
            fees: Decimal::ZERO,
            closed: 0,
            wins: 0,
            realised: Decimal::ZERO,
            max_exposure: Decimal::ZERO,
            max_drawdown: Decimal::ZERO,
            last_equity: config.initial_cash,
            returns: Running::default(),
            curve: Curve {
                stride: 1,
                n: 0,
                points: Vec::new(),
                last: None,
            },
        }
    }

    fn strategy(&mut self, name: &str) -> Option<&mut StrategyReport> {
        self.strategies.get_mut(name).map(|s| &mut s.report)
    }

    /// Adds one step's signals, fills and closed positions, and the account after it.
    pub(crate) fn record(&mut self, engine: &Engine, step: &StepReport) {
        self.steps += 1;
        self.first_ts.get_or_insert(step.t);
        self.last_ts = Some(step.t);
        for s in &step.signals {
            if let Some(r) = self.strategy(&s.signal.strategy) {
                r.signals += 1;
                *r.decisions.entry(decision_kind(&s.decision)).or_default() += 1;
            }
        }
        for f in &step.fills {
            self.fills += 1;
            self.fees += f.fill.fee;
            if let Some(r) = self.strategy(&f.strategy) {
                r.fills += 1;
                r.fees += f.fill.fee;
                match f.side {
                    Side::Buy => r.bought_usd += f.fill.cost,
                    Side::Sell => r.sold_usd += f.fill.cost,
                }
            }
        }
        for c in &step.closed {
            self.closed += 1;
            self.realised += c.realised_pnl;
            let won = c.realised_pnl > Decimal::ZERO;
            self.wins += u64::from(won);
            if let Some(r) = self.strategy(&c.strategy) {
                r.closed += 1;
                r.wins += u64::from(won);
                r.realised += c.realised_pnl;
                r.trades.push(c.clone());
            }
        }
        // Open positions by strategy: bounded by the risk limits, not by the steps.
        let mut open: BTreeMap<&str, (u64, Decimal, Decimal)> = BTreeMap::new();
        for p in engine.portfolio().positions.values() {
            let e = open.entry(p.strategy.as_str()).or_default();
            e.0 += 1;
            e.1 += p.unrealised_pnl();
            e.2 += p.cost;
        }
        let initial = self.config.initial_cash;
        let mut points = BTreeMap::new();
        for (name, t) in &mut self.strategies {
            let (n, unrealised, exposure) = open.get(name.as_str()).copied().unwrap_or_default();
            let r = &mut t.report;
            r.open_positions = n;
            r.unrealised = unrealised;
            r.exposure = exposure;
            r.pnl = r.realised + unrealised;
            r.max_exposure = r.max_exposure.max(exposure);
            let equity = initial + r.pnl;
            t.peak = t.peak.max(equity);
            let fall = t.peak - equity;
            r.max_drawdown_usd = r.max_drawdown_usd.max(fall);
            if t.peak > Decimal::ZERO {
                r.max_drawdown = r.max_drawdown.max((fall / t.peak).round_dp(6));
            }
            if let Some(x) = step_return(t.last_equity, equity) {
                t.returns.add(x);
            }
            t.last_equity = equity;
            points.insert(
                name.clone(),
                StrategyPoint {
                    pnl: r.pnl,
                    exposure,
                },
            );
        }
        let e = &step.equity;
        self.max_exposure = self.max_exposure.max(e.exposure);
        self.max_drawdown = self.max_drawdown.max(e.drawdown);
        if let Some(x) = step_return(self.last_equity, e.equity) {
            self.returns.add(x);
        }
        self.last_equity = e.equity;
        self.curve.push(CurvePoint {
            ts: step.t,
            cash: e.cash,
            equity: e.equity,
            exposure: e.exposure,
            drawdown: e.drawdown,
            strategies: points,
        });
    }

    /// The report once the replay is over.
    pub(crate) fn finish(self, engine: &Engine, mut data: DataSummary) -> Report {
        data.rows_out_of_order += self.rows_out_of_order;
        data.rows_unknown_market += self.rows_unknown_market;
        data.rows_after_settlement += self.rows_after_settlement;
        data.rows_other_token += self.rows_other_token;
        let p = engine.portfolio();
        let unrealised: Decimal = p.positions.values().map(|x| x.unrealised_pnl()).sum();
        let strategies = self
            .strategies
            .into_iter()
            .map(|(name, t)| {
                let mut r = t.report;
                r.win_rate = ratio(r.wins, r.closed);
                r.sharpe_per_step = t.returns.sharpe();
                (name, r)
            })
            .collect();
        let (curve_stride, curve) = self.curve.finish();
        let final_equity = p.equity();
        Report {
            format: REPORT_FORMAT,
            data,
            total: Totals {
                steps: self.steps,
                first_ts: self.first_ts,
                last_ts: self.last_ts,
                initial_cash: self.config.initial_cash,
                final_cash: p.cash,
                final_equity,
                pnl: final_equity - self.config.initial_cash,
                realised: self.realised,
                unrealised,
                fees: self.fees,
                fills: self.fills,
                closed: self.closed,
                wins: self.wins,
                win_rate: ratio(self.wins, self.closed),
                open_positions: p.positions.len() as u64,
                max_exposure: self.max_exposure,
                max_drawdown: self.max_drawdown,
                sharpe_per_step: self.returns.sharpe(),
            },
            config: self.config,
            strategies,
            curve_stride,
            curve,
        }
    }
}

impl Report {
    /// `report.json`: pretty-printed, keys in a fixed order, a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            // Only a map with non-string keys fails, and the report has none.
            format!("{{\"error\": \"{e}\"}}")
        });
        s.push('\n');
        s
    }

    /// Writes `report.json` and `report.html` into `dir` (created when missing).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.json"), self.to_json())?;
        std::fs::write(dir.join("report.html"), self.to_html())?;
        Ok(())
    }

    /// `report.html`: the figures as tables and the curves as inline SVG; no script, no
    /// external resource.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let t = &self.total;
        h.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>polytape backtest</title>\n<style>\n\
             body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}\n\
             table{border-collapse:collapse;margin:1em 0}\n\
             td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\n\
             th{background:#f3f3f3}\ntd.l,th.l{text-align:left}\n\
             svg{background:#fcfcfc;border:1px solid #ddd}\n\
             .k{display:inline-block;width:1em;height:.6em;margin:0 .3em}\n\
             </style>\n</head>\n<body>\n<h1>polytape backtest</h1>\n",
        );
        let _ = writeln!(
            h,
            "<p>{} steps from {} to {}; {} snapshot rows and {} book rows from {} files \
             ({} skipped); {} resolutions; mode paper.</p>",
            t.steps,
            esc(&ts_text(t.first_ts)),
            esc(&ts_text(t.last_ts)),
            self.data.snapshot_rows,
            self.data.book_rows,
            self.data.files_read,
            self.data.files_skipped,
            self.data.resolutions,
        );
        h.push_str("<h2>Account</h2>\n<table>\n");
        for (k, v) in [
            ("initial cash", money(t.initial_cash)),
            ("final equity", money(t.final_equity)),
            ("P&L", money(t.pnl)),
            ("realised", money(t.realised)),
            ("unrealised", money(t.unrealised)),
            ("fees", money(t.fees)),
            ("fills", t.fills.to_string()),
            ("closed positions", t.closed.to_string()),
            ("win rate", pct(t.win_rate)),
            ("open positions", t.open_positions.to_string()),
            ("max exposure", money(t.max_exposure)),
            ("max drawdown", frac_pct(t.max_drawdown)),
            ("Sharpe (per step)", num(t.sharpe_per_step)),
        ] {
            let _ = writeln!(h, "<tr><th class=\"l\">{}</th><td>{}</td></tr>", esc(k), v);
        }
        h.push_str(
            "</table>\n<h2>Strategies</h2>\n<table>\n<tr><th class=\"l\">strategy</th>\
                    <th>signals</th><th>fills</th><th>closed</th><th>win rate</th><th>P&amp;L</th>\
                    <th>realised</th><th>unrealised</th><th>fees</th><th>max exposure</th>\
                    <th>max drawdown</th><th>Sharpe (per step)</th></tr>\n",
        );
        for (i, (name, r)) in self.strategies.iter().enumerate() {
            let _ = writeln!(
                h,
                "<tr><td class=\"l\"><span class=\"k\" style=\"background:{}\"></span>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td></tr>",
                color(i),
                esc(name),
                r.signals,
                r.fills,
                r.closed,
                pct(r.win_rate),
                money(r.pnl),
                money(r.realised),
                money(r.unrealised),
                money(r.fees),
                money(r.max_exposure),
                money(r.max_drawdown_usd),
                frac_pct(r.max_drawdown),
                num(r.sharpe_per_step),
            );
        }
        h.push_str("</table>\n");
        let times: Vec<i64> = self.curve.iter().map(|p| p.ts.timestamp_millis()).collect();
        let series = |f: &dyn Fn(&CurvePoint) -> Decimal| -> Vec<f64> {
            self.curve
                .iter()
                .map(|p| f(p).to_f64().unwrap_or(0.0))
                .collect()
        };
        h.push_str("<h2>Account equity</h2>\n");
        h.push_str(&svg(&times, &[("#222", series(&|p| p.equity))]));
        let names: Vec<&String> = self.strategies.keys().collect();
        let per = |field: fn(&StrategyPoint) -> Decimal| -> Vec<(&'static str, Vec<f64>)> {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let values = series(&|p| p.strategies.get(*n).map(field).unwrap_or_default());
                    (color(i), values)
                })
                .collect()
        };
        h.push_str("<h2>P&amp;L by strategy (equity curves less the initial cash)</h2>\n");
        h.push_str(&svg(&times, &per(|s| s.pnl)));
        h.push_str("<h2>Exposure by strategy (cost of open positions)</h2>\n");
        h.push_str(&svg(&times, &per(|s| s.exposure)));
        h.push_str("<h2>Trades</h2>\n");
        for (name, r) in &self.strategies {
            let _ = writeln!(
                h,
                "<h3>{}</h3>\n<p>{} closed; {}</p>",
                esc(name),
                r.trades.len(),
                esc(&r.description)
            );
            if r.trades.is_empty() {
                continue;
            }
            h.push_str(
                "<table>\n<tr><th class=\"l\">market</th><th class=\"l\">outcome</th>\
                 <th>shares</th><th>cost</th><th>proceeds</th><th>P&amp;L</th>\
                 <th class=\"l\">opened</th><th class=\"l\">closed</th>\
                 <th class=\"l\">how</th></tr>\n",
            );
            const SHOWN: usize = 500;
            for c in r.trades.iter().take(SHOWN) {
                let how = serde_json::to_string(&c.reason).unwrap_or_default();
                let _ = writeln!(
                    h,
                    "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>\
                     <td>{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
                     <td class=\"l\">{}</td></tr>",
                    esc(&c.condition_id),
                    c.outcome.as_str(),
                    c.shares.round_dp(2),
                    money(c.cost),
                    money(c.proceeds),
                    money(c.realised_pnl),
                    esc(&ts_text(Some(c.opened_at))),
                    esc(&ts_text(Some(c.closed_at))),
                    esc(&how),
                );
            }
            h.push_str("</table>\n");
            if r.trades.len() > SHOWN {
                let _ = writeln!(h, "<p>{} more in report.json.</p>", r.trades.len() - SHOWN);
            }
        }
        h.push_str("</body>\n</html>\n");
        h
    }
}

/// A line chart of `series` (colour, values) over `times` (ms), with the value range and the
/// first and last time as labels.
fn svg(times: &[i64], series: &[(&str, Vec<f64>)]) -> String {
    const W: f64 = 900.0;
    const H: f64 = 240.0;
    const PAD: f64 = 60.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" role=\"img\">"
    );
    let (Some(&t0), Some(&t1)) = (times.first(), times.last()) else {
        out.push_str("<text x=\"20\" y=\"30\">no steps</text>\n</svg>\n");
        return out;
    };
    let values = series.iter().flat_map(|(_, v)| v.iter().copied());
    let (mut lo, mut hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        (lo, hi) = (0.0, 0.0);
    }
    if hi - lo < 1e-9 {
        lo -= 1.0;
        hi += 1.0;
    }
    let span = (t1 - t0).max(1) as f64;
    let x = |t: i64| PAD + (t - t0) as f64 / span * (W - 2.0 * PAD);
    let y = |v: f64| H - 30.0 - (v - lo) / (hi - lo) * (H - 50.0);
    let _ = writeln!(
        out,
        "<line x1=\"{PAD}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#bbb\"/>",
        H - 30.0,
        W - PAD,
        H - 30.0
    );
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"{:.1}\" font-size=\"11\">{hi:.2}</text>\n\
         <text x=\"4\" y=\"{:.1}\" font-size=\"11\">{lo:.2}</text>",
        y(hi) + 4.0,
        y(lo) + 4.0
    );
    let at = |ms: i64| ts_text(chrono::DateTime::from_timestamp_millis(ms));
    let _ = writeln!(
        out,
        "<text x=\"{PAD}\" y=\"{:.1}\" font-size=\"11\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        H - 10.0,
        esc(&at(t0)),
        W - PAD,
        H - 10.0,
        esc(&at(t1))
    );
    for (colour, values) in series {
        let mut pts = String::new();
        for (t, v) in times.iter().zip(values) {
            let _ = write!(pts, "{:.1},{:.1} ", x(*t), y(*v));
        }
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
            pts.trim_end()
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A fixed colour per strategy (by its place in name order).
fn color(i: usize) -> &'static str {
    const PALETTE: [&str; 8] = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    ];
    PALETTE[i % PALETTE.len()]
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ts_text(t: Option<Ts>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

fn money(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

fn frac_pct(d: Decimal) -> String {
    format!("{:.2} %", (d * Decimal::ONE_HUNDRED).round_dp(2))
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.1} %", x * 100.0))
}

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.3}"))
}
