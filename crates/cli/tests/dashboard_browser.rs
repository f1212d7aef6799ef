//! The dashboard at `/` in a real browser: `polytape run --simulate` (the real binary) serves
//! it, headless Chromium (Debian's `chromium`) loads it, and the test drives the browser through
//! `chromedriver` over HTTP: WebDriver for the session and navigation, the DevTools protocol
//! (chromedriver's `goog/cdp/execute`) for the window size, scripts, mouse clicks, typing and
//! the screenshot. It checks that what a person reads on the page — markets per tier, trades
//! per minute, coverage per tier — is what the JSON API answers at about the same moment, that typing in the search box filters the markets table as
//! `/api/markets?q=` does, that clicking a market row opens its detail with its recent samples
//! as `/api/markets/{id}` has them, that the data view pages a table's rows with the API's
//! cursor, that the paper executor's tab shows the open positions `/api/executor/positions`
//! lists and the equity curve's points and switches a strategy on, and that the page caught no
//! error of its own. It saves a screenshot to a temporary
//! file, and with `POLYTAPE_WRITE_SCREENSHOT=1` to docs/screenshots/dashboard.png, the one the
//! README shows (so a test run leaves the checkout as it was).
//!
//! Chromium and chromedriver come from `infra/tools.sh` (apt-get). Without them the test says so
//! and passes, unless `POLYTAPE_REQUIRE_TOOLS=1` (infra/test.sh), where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: any failure should fail it loudly

mod common;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The laptop screen the page must read well on.
const WIDTH: u32 = 1366;
const HEIGHT: u32 = 768;

/// A child process killed when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tool's path: the variable `env` names it, else the first of `names` on the PATH.
fn tool(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|d| names.iter().map(move |n| d.join(n)))
            .find(|p| p.is_file())
    })
}

/// The paper executor's configuration of the run: `longshot_yes` buys YES in every market with
/// an ask (a price band of 0.01–0.99, any time to close, held to resolution), so positions open
/// at the executor's first steps over the simulator's ticks; `longshot_no` is off, to be
/// switched on from the page.
const EXECUTOR_CONFIG: &str = r#"
mode: paper
initial_cash: 1000
sizing: {method: fixed, usd: 10}
risk: {max_open_positions: 20, max_drawdown: 0.9}
strategies:
  longshot_yes:
    params: {min_price: 0.01, max_price: 0.99, max_hours_to_close: 100000, stop_loss: null}
  longshot_no: {enabled: false}
  mean_reversion: {enabled: false}
  term_structure: {enabled: false}
"#;

/// `polytape run --simulate` on a free port, with the paper executor configured as
/// [`EXECUTOR_CONFIG`]: the process and its status API's base URL.
fn start_polytape(data: &Path) -> (Reaped, String) {
    let config = data.join("executor-test.yaml");
    std::fs::write(&config, EXECUTOR_CONFIG).unwrap();
    let config = config.to_str().unwrap();
    let (child, rx) = common::polytape_run(data, &["--executor-config", config], Stdio::null());
    let child = Reaped(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("no `status API on` line");
        if let Some(rest) = line.split("status API on ").nth(1) {
            let base = rest.split("/health").next().unwrap().trim().to_string();
            // Keep draining, so the process never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (child, base);
        }
    }
}

/// `chromedriver` on a free port: the process and its WebDriver base URL.
fn start_chromedriver(path: &Path) -> (Reaped, String) {
    let mut cmd = Command::new(path);
    cmd.args(["--port=0", "--allowed-ips=127.0.0.1"])
        .stderr(Stdio::null());
    let (child, rx) = common::spawn_lines(cmd);
    let child = Reaped(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            panic!("chromedriver did not start: {seen:#?}");
        };
        // `ChromeDriver was started successfully on port 46471.`
        if let Some(port) = line.split("started successfully on port ").nth(1) {
            let port = port.trim().trim_end_matches('.').to_string();
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (child, format!("http://127.0.0.1:{port}"));
        }
        seen.push(line);
    }
}

/// One browser session: WebDriver over HTTP for the session and navigation, the DevTools
/// protocol (through chromedriver's `goog/cdp/execute`) for the rest.
struct Page {
    http: reqwest::Client,
    /// `<chromedriver>/session/<id>`.
    session: String,
}

impl Page {
    /// A new headless Chromium at 1366×768 with an empty profile in `profile`.
    async fn open(driver: &str, chromium: &Path, profile: &Path) -> Page {
        let args = json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            format!("--window-size={WIDTH},{HEIGHT}"),
            format!("--user-data-dir={}", profile.display()),
        ]);
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let http = reqwest::Client::new();
        let r: Value = http
            .post(format!("{driver}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"));
        let mut page = Page {
            http,
            session: format!("{driver}/session/{id}"),
        };
        page.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        page
    }

    /// A WebDriver command: its `value`.
    async fn webdriver(&self, path: &str, body: Value) -> Value {
        let r: Value = self
            .http
            .post(format!("{}/{path}", self.session))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(r["value"]["error"].is_null(), "{path}: {r}");
        r["value"].clone()
    }

    /// A DevTools command on the page: its result.
    async fn cdp(&mut self, method: &str, params: Value) -> Value {
        self.webdriver("goog/cdp/execute", json!({"cmd": method, "params": params}))
            .await
    }

    /// Loads `url` (WebDriver waits for the load).
    async fn navigate(&mut self, url: &str) {
        self.webdriver("url", json!({"url": url})).await;
    }

    async fn close(&self) {
        let _ = self.http.delete(&self.session).send().await;
    }

    /// The value of a JavaScript expression (awaited when it is a promise).
    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .cdp(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            r["exceptionDetails"].is_null(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true.
    async fn wait_for(&mut self, expression: &str, what: &str) {
        let shown = self.wait_until(expression, Duration::from_secs(30)).await;
        assert!(shown, "the page never showed {what}");
    }

    /// Whether `expression` turns true within `limit`.
    async fn wait_until(&mut self, expression: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.eval(expression).await == json!(true) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// A real mouse click in the middle of the element `selector` (scrolled into view).
    async fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let at = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return null;
                   e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
                   return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
            ))
            .await;
        let (x, y) = (at[0].as_f64(), at[1].as_f64());
        let (Some(x), Some(y)) = (x, y) else {
            panic!("nothing to click at {selector}");
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.cdp(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Types `text` into the element `selector` as a keyboard would.
    async fn type_into(&mut self, selector: &str, text: &str) {
        self.click(selector).await;
        self.cdp("Input.insertText", json!({"text": text})).await;
    }

    async fn screenshot(&mut self) -> Vec<u8> {
        let r = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": false}),
            )
            .await;
        base64_decode(r["data"].as_str().unwrap())
    }
}

/// Standard base64 (CDP's screenshots), without a crate for it.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c) << (18 - 6 * i);
        }
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..chunk.len()]);
    }
    out
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url).await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

/// A number as the page shows it (`1,234`, `99.5%`), or `None` for its "—".
fn shown(v: &Value) -> Option<f64> {
    let t = v.as_str()?.replace([',', '%'], "");
    t.trim().parse().ok()
}

/// What the overview shows that the test compares: the same keys as [`expected`].
const READ_OVERVIEW: &str = r#"(() => {
  const t = (id) => { const e = document.getElementById(id); return e ? e.textContent : null; };
  const out = { total: t("markets-total"), trades_per_min: t("trades-per-min") };
  for (const tier of ["T0", "T1", "T2", "T3", "T4"]) {
    out["markets_" + tier] = t("markets-" + tier);
    out["coverage_" + tier] = t("coverage-" + tier);
    out["expected_" + tier] = t("expected-" + tier);
    out["written_" + tier] = t("written-" + tier);
  }
  return out;
})()"#;

/// `x.toFixed(d)` as the page's JavaScript computes it: on the exact binary value, an exact
/// tie rounded up (Rust's `{:.d$}` rounds a tie to even: 0.125 is "0.12" there, "0.13" here).
fn to_fixed(x: f64, d: usize) -> f64 {
    let exact = format!("{x:.80}");
    let tail = &exact[exact.find('.').unwrap() + 1 + d..];
    let tie = tail.starts_with('5') && tail[1..].bytes().all(|b| b == b'0');
    let step = 10f64.powi(d as i32);
    let rounded: f64 = format!("{x:.d$}").parse().unwrap();
    if tie && x >= 0.0 && rounded < x {
        rounded + 1.0 / step
    } else {
        rounded
    }
}

/// The values the overview should show, from `/api/stats`, rounded as it shows them.
fn expected(stats: &Value) -> Vec<(String, Option<f64>)> {
    let mut out = vec![
        ("total".into(), stats["markets_tracked"].as_f64()),
        (
            "trades_per_min".into(),
            stats["live"]["trades_per_min"].as_f64(),
        ),
    ];
    for tier in ["T0", "T1", "T2", "T3", "T4"] {
        let t = &stats["tiers"][tier];
        out.push((
            format!("markets_{tier}"),
            Some(stats["markets_per_tier"][tier].as_f64().unwrap_or(0.0)),
        ));
        out.push((
            format!("coverage_{tier}"),
            t["coverage_pct_last_hour"].as_f64().map(|p| to_fixed(p, 1)),
        ));
        out.push((
            format!("expected_{tier}"),
            t["expected_rows_last_hour"].as_f64(),
        ));
        out.push((format!("written_{tier}"), t["rows_last_hour"].as_f64()));
    }
    out
}

/// The differences between what the page shows and `/api/stats` now.
async fn overview_differences(page: &mut Page, base: &str) -> Vec<String> {
    let seen = page.eval(READ_OVERVIEW).await;
    let stats = get_json(&format!("{base}/api/stats")).await;
    expected(&stats)
        .into_iter()
        .filter_map(|(key, want)| {
            let got = shown(&seen[&key]);
            let same = match (got, want) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-6,
                (a, b) => a == b,
            };
            (!same).then(|| format!("{key}: page {} vs JSON {want:?}", seen[&key]))
        })
        .collect()
}

/// The open positions the page shows: strategy, token, shares and cost as shown.
const READ_POSITIONS: &str = r#"[...document.querySelectorAll('#ex-positions tbody tr[data-token]')]
  .map(r => [r.dataset.strategy, r.dataset.token, r.cells[3].textContent, r.cells[6].textContent])"#;

/// The same of `/api/executor/positions`, rounded as the page shows them.
fn positions_of(json: &Value) -> Value {
    let round = |v: &Value, dp: u32| {
        let n: Decimal = v.as_str().unwrap().parse().unwrap();
        let n = n.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
        format!("{:.*}", dp as usize, n)
    };
    json["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            json!([
                p["strategy"],
                p["token_id"],
                round(&p["shares"], 2),
                round(&p["cost"], 2)
            ])
        })
        .collect()
}

/// The paper executor's tab: once the executor holds a position, the page lists the open
/// positions `/api/executor/positions` lists and draws the equity curve's points; a strategy's
/// switch on the page (a local run) turns it on through `POST /api/strategies/{name}`.
async fn paper_executor_section(page: &mut Page, base: &str) {
    // The executor steps the slots whose ticks are final once a minute (a slot 75 s after its
    // tick): its first positions come within about three minutes of the start.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let p = get_json(&format!("{base}/api/executor/positions")).await;
        if p["open"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no paper position after 300 s: {p}"
        );
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    page.click("nav a[data-tab=executor]").await;
    page.wait_for(
        "document.getElementById('tab-executor').dataset.loaded === '1' && \
         document.querySelectorAll('#ex-positions tbody tr[data-token]').length > 0",
        "the paper positions",
    )
    .await;
    // The positions shown are the JSON's (the executor may step between the two reads: then
    // refresh and read both again).
    let (mut shown_rows, mut want) = (Value::Null, Value::Null);
    for _ in 0..5 {
        shown_rows = page.eval(READ_POSITIONS).await;
        let api = get_json(&format!("{base}/api/executor/positions?limit=200")).await;
        want = positions_of(&api);
        if shown_rows == want {
            break;
        }
        let before = page.eval("document.body.dataset.refreshes").await;
        page.click("#reload").await;
        page.wait_for(
            &format!("document.body.dataset.refreshes !== {before}"),
            "a refresh",
        )
        .await;
    }
    assert_eq!(shown_rows, want, "open positions: page vs JSON");
    assert!(!want.as_array().unwrap().is_empty());
    let count = page
        .eval("document.getElementById('ex-open-count').textContent")
        .await;
    assert_eq!(shown(&count), Some(want.as_array().unwrap().len() as f64));
    // The equity curve: a point per step (the executor has stepped more than one slot by
    // the time it holds a position), drawn as the status's points.
    let status = get_json(&format!("{base}/api/executor/status?points=500")).await;
    let points = status["equity_curve"].as_array().unwrap().len();
    assert!(points >= 2, "{status}");
    let curve = "(() => { const svg = document.getElementById('ex-equity-svg');
        const line = document.getElementById('ex-equity-line');
        return svg && line ? [Number(svg.dataset.points), line.getAttribute('points').split(' ').length] : null; })()";
    let drawn = page.eval(curve).await;
    let drawn_points = drawn[0].as_u64().unwrap();
    assert!(
        drawn_points as usize >= points.min(2) && drawn[1] == drawn[0],
        "equity curve drawn: {drawn} vs {points} points in the JSON"
    );
    // A strategy switched on from the page: the API lists it on.
    page.wait_for(
        "document.querySelector('#ex-strategies button[data-toggle=longshot_no]') !== null",
        "the strategies' switches (a local run)",
    )
    .await;
    page.click("#ex-strategies button[data-toggle=longshot_no]")
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = get_json(&format!("{base}/api/strategies")).await;
        let on = s["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "longshot_no" && x["enabled"] == true);
        if on {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "longshot_no never turned on: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    page.wait_for(
        "document.querySelector('#ex-strategies tr[data-strategy=longshot_no] .badge').textContent === 'on'",
        "longshot_no switched on",
    )
    .await;
    let card_errors = page
        .eval("[...document.querySelectorAll('#tab-executor .err')].map(e => e.textContent).filter(Boolean)")
        .await;
    assert_eq!(card_errors, json!([]), "executor cards that failed to load");
    let png = page.screenshot().await;
    let tmp = std::env::temp_dir().join("polytape-dashboard-executor.png");
    std::fs::write(&tmp, &png).unwrap();
    eprintln!("screenshot: {}", tmp.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_apis_numbers_filters_markets_opens_one_and_browses_a_table() {
    let browser = tool("POLYTAPE_CHROMIUM", &["chromium", "chromium-browser"]);
    let driver = tool("POLYTAPE_CHROMEDRIVER", &["chromedriver"]);
    let (Some(browser), Some(chromedriver)) = (browser, driver) else {
        let msg = "no Chromium or chromedriver (Debian's chromium and chromium-driver: \
                   infra/tools.sh installs them)";
        if std::env::var("POLYTAPE_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let (_polytape, base) = start_polytape(data.path());

    // Given a run with data: a T4 tick has written rows, and the live feed follows the
    // discovered markets (its first follow after discovery comes within about 2 minutes), has
    // a shard connected and stores trades.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let s = get_json(&format!("{base}/api/stats")).await;
        let rows = s["tiers"]["T4"]["rows_last_hour"].as_u64().unwrap_or(0);
        let trades = s["live"]["trades_per_min"].as_u64().unwrap_or(0);
        let shards = s["live"]["connected_shards"].as_u64().unwrap_or(0);
        if rows > 0 && trades > 0 && shards > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no data after 240 s: {s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // When the page is loaded in the browser…
    let profile = tempfile::tempdir().unwrap();
    let (_chromedriver, driver) = start_chromedriver(&chromedriver);
    let mut page = Page::open(&driver, &browser, profile.path()).await;
    page.navigate(&format!("{base}/")).await;
    page.wait_for(
        "document.body.dataset.loaded === '1' && \
         document.getElementById('markets-total').textContent !== '—' && \
         document.getElementById('trades-per-min').textContent !== '—'",
        "its numbers",
    )
    .await;

    // …then it shows the JSON's numbers (a refresh may land between the page's read and
    // ours: then refresh the page and read both again).
    let mut differences = Vec::new();
    for _ in 0..5 {
        differences = overview_differences(&mut page, &base).await;
        if differences.is_empty() {
            break;
        }
        let before = page.eval("document.body.dataset.refreshes").await;
        page.click("#reload").await;
        page.wait_for(
            &format!("document.body.dataset.refreshes !== {before}"),
            "a refresh",
        )
        .await;
    }
    assert!(differences.is_empty(), "{differences:#?}");
    let card_errors = page
        .eval("[...document.querySelectorAll('.err')].map(e => e.textContent).filter(Boolean)")
        .await;
    assert_eq!(card_errors, json!([]), "cards that failed to load");
    // The charts are drawn: a bar per tier and hour in the samples chart.
    let bars = page
        .eval("document.querySelectorAll('#samples-svg rect').length")
        .await;
    assert!(bars.as_u64().unwrap() >= 10, "samples chart: {bars} bars");
    // …and the trades chart: a bar per bin of the stored trades, some of them trades (within
    // a minute or two: the bins are whole minutes until 500 trades span less than 15 of them).
    let trade_bars = "(() => { const b = [...document.querySelectorAll('#trades-svg rect')]
        .map(r => Number(r.getAttribute('height'))); return b.length >= 8 && b.some(h => h > 0); })()";
    assert!(
        page.wait_until(trade_bars, Duration::from_secs(150)).await,
        "the trades chart never showed a trade"
    );
    let overview_png = page.screenshot().await;

    // Searching: a word of a T4 market's question that not every market has.
    page.click("nav a[data-tab=markets]").await;
    page.wait_for(
        "document.querySelectorAll('#markets-table tbody tr[data-condition-id]').length > 0",
        "the markets table",
    )
    .await;
    let all = get_json(&format!("{base}/api/markets?limit=1")).await["total"]
        .as_u64()
        .unwrap();
    let t4 = get_json(&format!("{base}/api/markets?tier=T4&limit=20")).await;
    let mut pick = None;
    'find: for m in t4["markets"].as_array().unwrap() {
        let question = m["question"].as_str().unwrap();
        for word in question.split(|c: char| !c.is_alphanumeric()) {
            if word.len() < 5 {
                continue;
            }
            let found = get_json(&format!("{base}/api/markets?q={word}&limit=1")).await;
            let n = found["total"].as_u64().unwrap();
            if n >= 1 && n < all {
                pick = Some((
                    word.to_string(),
                    m["condition_id"].as_str().unwrap().to_string(),
                ));
                break 'find;
            }
        }
    }
    let (word, market) = pick.expect("a word that some markets have and some not");
    page.type_into("#market-search", &word).await;
    page.wait_for(
        &format!(
            "document.getElementById('markets-table').dataset.q === {}",
            json!(word)
        ),
        "the filtered table",
    )
    .await;
    let rows = page
        .eval(
            "[...document.querySelectorAll('#markets-table tbody tr[data-condition-id]')]\
             .map(r => [r.dataset.conditionId, r.cells[0].textContent])",
        )
        .await;
    let rows = rows.as_array().unwrap();
    let want = get_json(&format!("{base}/api/markets?q={word}&limit=50")).await;
    let want_ids: Vec<&str> = want["markets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["condition_id"].as_str().unwrap())
        .collect();
    let got_ids: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(got_ids, want_ids, "the rows for {word:?}");
    assert!(
        (got_ids.len() as u64) < all,
        "{word:?} filtered nothing: {} rows",
        got_ids.len()
    );
    for r in rows {
        let text = r[1].as_str().unwrap().to_lowercase();
        assert!(text.contains(&word.to_lowercase()), "{text} lacks {word:?}");
    }
    let found = page
        .eval("document.getElementById('markets-found').textContent")
        .await;
    assert_eq!(shown(&found), want["total"].as_f64(), "markets found");

    // Clicking the T4 market's row opens its detail: its condition id and its recent samples,
    // as /api/markets/{id} has them (one more sample may land between the two reads).
    let mut detail = (json!(null), json!(null), json!(null));
    for _ in 0..3 {
        // A refresh that redraws the table between press and release loses a click: again.
        page.click(&format!("#markets-table tr[data-condition-id='{market}']"))
            .await;
        let opened = format!(
            "document.getElementById('market-detail').dataset.conditionId === {}",
            json!(market)
        );
        if !page.wait_until(&opened, Duration::from_secs(10)).await {
            continue;
        }
        let shown_id = page
            .eval("document.getElementById('detail-condition-id').textContent")
            .await;
        let count = page
            .eval("document.getElementById('detail-snapshots-count').textContent")
            .await;
        let api = get_json(&format!("{base}/api/markets/{market}?snapshots=20")).await;
        detail = (shown_id, count, api);
        let samples = detail.2["market"]["snapshots"].as_array().unwrap().len();
        if shown(&detail.1) == Some(samples as f64) {
            break;
        }
    }
    let (shown_id, count, api) = detail;
    assert_eq!(shown_id, api["market"]["condition_id"], "condition id");
    let samples = api["market"]["snapshots"].as_array().unwrap().len();
    assert_eq!(shown(&count), Some(samples as f64), "recent samples shown");
    assert!(samples > 0, "a T4 market has samples: {api}");
    let sample_rows = page
        .eval("document.querySelectorAll('#detail-snapshots tbody tr').length")
        .await;
    assert_eq!(sample_rows.as_u64(), Some(samples as u64));

    // The data view: pick the snapshots table; its newest rows appear.
    page.click("nav a[data-tab=data]").await;
    page.wait_for(
        "document.querySelector('#tables-list button[data-table=snapshots]') !== null",
        "the table list",
    )
    .await;
    page.click("#tables-list button[data-table=snapshots]")
        .await;
    page.wait_for(
        "document.getElementById('table-rows').dataset.table === 'snapshots'",
        "the snapshots rows",
    )
    .await;
    let shown_rows = page
        .eval("document.querySelectorAll('#table-rows tbody tr').length")
        .await;
    let first = get_json(&format!("{base}/api/tables/snapshots?limit=50")).await;
    let api_rows = first["rows"].as_array().unwrap().len();
    assert!(api_rows > 0);
    assert_eq!(shown_rows.as_u64(), Some(api_rows as u64), "rows on page 1");

    // Its cursor paging: "older »" shows the page the API's next cursor gives.
    if let Some(cursor) = first["next_cursor"].as_str() {
        page.click("#rows-next").await;
        page.wait_for(
            "document.getElementById('table-rows').dataset.table === 'snapshots' && \
             document.getElementById('table-count').textContent.startsWith('page 2')",
            "the second page of snapshots",
        )
        .await;
        let shown_rows = page
            .eval("document.querySelectorAll('#table-rows tbody tr').length")
            .await;
        let cursor = cursor
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let second = get_json(&format!(
            "{base}/api/tables/snapshots?limit=50&cursor={cursor}"
        ))
        .await;
        let api_rows = second["rows"].as_array().unwrap().len();
        assert!(api_rows > 0, "a second page: {second}");
        assert_eq!(shown_rows.as_u64(), Some(api_rows as u64), "rows on page 2");
    }

    paper_executor_section(&mut page, &base).await;

    let errors = page.eval("window.pageErrors").await;
    assert_eq!(errors, json!([]), "errors the page caught");

    // The screenshot the README shows: the overview at 1366×768, in docs/screenshots
    // with POLYTAPE_WRITE_SCREENSHOT=1 (else in the temporary directory only).
    assert!(overview_png.starts_with(b"\x89PNG"), "a PNG");
    let tmp = std::env::temp_dir().join("polytape-dashboard.png");
    std::fs::write(&tmp, &overview_png).unwrap();
    eprintln!("screenshot: {}", tmp.display());
    if std::env::var("POLYTAPE_WRITE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("dashboard.png"), &overview_png).unwrap();
        eprintln!("screenshot: {}", docs.join("dashboard.png").display());
    }
    page.close().await;
}
