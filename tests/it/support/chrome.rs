//! A real browser for the tests: Debian's `chromium`, driven through `chromedriver` (WebDriver)
//! with fantoccini. One chromedriver serves the whole test binary; every browser a test opens is
//! its own headless Chromium session with its own profile, so cookies never leak between
//! browsers or tests.
//!
//! Without chromium and chromedriver the tests print that they were skipped and why; with
//! `CI` or `GATEHOUSE_TEST_REQUIRE_TOOLS` set they fail instead, and they always fail when the
//! programs are there but the browser cannot start.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::web::{Backend, Server};

/// How long a page may take to load or an element to appear before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// Where failures leave their screenshot and HTML, and where the suite's screenshots go.
pub fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser")
}

#[derive(Clone)]
enum Driver {
    Ready { url: String, chromium: PathBuf },
    Missing(String),
}

fn program(env_var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env_var) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

fn required() -> bool {
    super::tools_required()
}

/// Starts chromedriver once for this test binary, on a free loopback port.
fn driver() -> Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(start_driver).clone()
}

fn start_driver() -> Driver {
    let chromium = program("GATEHOUSE_TEST_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = program("GATEHOUSE_TEST_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        let reason = "chromium and chromedriver are not both on PATH \
                      (apt-get install chromium chromium-driver, or set GATEHOUSE_TEST_CHROMIUM / GATEHOUSE_TEST_CHROMEDRIVER)";
        assert!(!required(), "the browser suite is required here (CI or GATEHOUSE_TEST_REQUIRE_TOOLS) but {reason}");
        return Driver::Missing(reason.into());
    };
    let port = super::port_for_a_server();
    std::fs::create_dir_all(artifacts_dir()).unwrap();
    let log = std::fs::File::create(artifacts_dir().join("chromedriver.log")).unwrap();
    // The driver is spawned from a thread that lives as long as the test process, and asks the
    // kernel to kill it when that thread ends: no chromedriver outlives the tests.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(&chromedriver);
        cmd.arg(format!("--port={port}")).stdout(log.try_clone().unwrap()).stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let started = cmd.spawn().map(|_child| ()).map_err(|e| format!("cannot run {}: {e}", chromedriver.display()));
        tx.send(started).unwrap();
        loop {
            std::thread::park();
        }
    });
    if let Err(e) = rx.recv().unwrap() {
        panic!("{e}");
    }
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on port {port} within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Driver::Ready { url: format!("http://127.0.0.1:{port}"), chromium }
}

/// One browser window: a Chromium session pointed at the test server.
#[derive(Clone)]
pub struct Tab {
    pub client: Client,
    base: String,
    label: String,
}

impl Tab {
    /// Opens `path` under system_url (or a whole URL).
    pub async fn open(&self, path: &str) {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{}", self.base, path) };
        self.client.goto(&url).await.unwrap_or_else(|e| panic!("[{}] cannot open {url}: {e}", self.label));
    }

    /// The element matching a CSS selector, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.wait_for(Locator::Css(css), &format!("element `{css}`")).await
    }

    /// Waits for an element; a missing one fails the test naming the page it was looked for on.
    async fn wait_for(&self, locator: Locator<'_>, what: &str) -> Element {
        match self.client.wait().at_most(PATIENCE).for_element(locator).await {
            Ok(e) => e,
            Err(e) => panic!("[{}] no {what} on {}: {e}", self.label, self.path().await),
        }
    }

    /// Types `value` into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Ticks or unticks a checkbox.
    pub async fn set_checked(&self, css: &str, checked: bool) {
        let b = self.find(css).await;
        if b.is_selected().await.unwrap() != checked {
            b.click().await.unwrap();
        }
    }

    /// Clicks the button whose text is `text` (inside `scope`, a CSS selector, when given) and
    /// waits until the page it leads to has replaced this one.
    pub async fn press(&self, text: &str) {
        self.press_in("", text).await;
    }

    pub async fn press_in(&self, scope: &str, text: &str) {
        let xpath = match scope {
            "" => format!("//button[normalize-space(.)='{text}']"),
            _ => format!("{}//button[normalize-space(.)='{text}']", css_to_xpath_scope(scope)),
        };
        let button = self.wait_for(Locator::XPath(&xpath), &format!("button \"{text}\" {scope}")).await;
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        button.click().await.unwrap();
        self.until_replaced(old).await;
    }

    /// Follows the link whose text is `text`.
    pub async fn follow(&self, text: &str) {
        let link = self.wait_for(Locator::LinkText(text), &format!("link \"{text}\"")).await;
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        link.click().await.unwrap();
        self.until_replaced(old).await;
    }

    /// Waits until `old` (the previous page's root element) is gone: the next page has loaded.
    async fn until_replaced(&self, old: Element) {
        let deadline = Instant::now() + PATIENCE;
        while old.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "[{}] the page did not change within {PATIENCE:?}", self.label);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.client.wait().at_most(PATIENCE).for_element(Locator::Css("body")).await.unwrap();
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.find("body").await.text().await.unwrap()
    }

    /// Asserts that the page shows `needle`, and returns the whole text.
    pub async fn sees(&self, needle: &str) -> String {
        let text = self.text().await;
        assert!(text.contains(needle), "[{}] {} does not show \"{needle}\":\n{text}", self.label, self.path().await);
        text
    }

    /// The path (with query) of the current page, relative to system_url.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        url.strip_prefix(&self.base).map(|p| format!("/{p}")).unwrap_or(url)
    }

    pub async fn html(&self) -> String {
        self.client.source().await.unwrap_or_default()
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Saves a screenshot named `name` under `target/tmp/browser/screenshots/`, and also in
    /// `$GATEHOUSE_TEST_SCREENSHOT_DIR` when set (README's pictures: `GATEHOUSE_TEST_SCREENSHOT_DIR=docs`).
    pub async fn snapshot(&self, name: &str) {
        self.screenshot(&artifacts_dir().join("screenshots").join(format!("{name}.png"))).await;
        if let Some(dir) = std::env::var_os("GATEHOUSE_TEST_SCREENSHOT_DIR") {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            self.screenshot(&dir.join(format!("{name}.png"))).await;
        }
    }

    /// Runs a script in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }
}

/// `form[action$='x']` → an XPath prefix matching that form (the only scopes the tests use).
fn css_to_xpath_scope(scope: &str) -> String {
    let suffix = scope
        .strip_prefix("form[action$='")
        .and_then(|s| s.strip_suffix("']"))
        .unwrap_or_else(|| panic!("unsupported scope {scope}: use form[action$='…']"));
    format!("//form[substring(@action, string-length(@action) - {}) = '{suffix}']", suffix.len() - 1)
}

/// What a browser test gets: the server, and browsers to open on it.
#[derive(Clone)]
pub struct Suite {
    pub server: Arc<Server>,
    tabs: Arc<Mutex<Vec<Tab>>>,
    driver: String,
    chromium: PathBuf,
}

impl Suite {
    /// A new browser (its own profile and cookies), named `label` in failure reports.
    pub async fn browser(&self, label: &str) -> Tab {
        self.browser_with(label, &[], &self.server.base).await
    }

    /// A browser with more Chromium `args` (a host resolver rule, a certificate to accept),
    /// whose relative paths open under `base` (a proxy in front, say).
    pub async fn browser_with(&self, label: &str, args: &[&str], base: &str) -> Tab {
        let mut all = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--window-size=1000,900",
            "--lang=en-US",
        ];
        all.extend_from_slice(args);
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": all,
            },
            // The console, read back after the test: a page the Content-Security-Policy broke
            // says so there.
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.driver)
            .await
            .unwrap_or_else(|e| panic!("the browser could not start through chromedriver at {}: {e}", self.driver));
        let tab = Tab { client, base: base.to_string(), label: label.into() };
        self.tabs.lock().unwrap().push(tab.clone());
        tab
    }
}

/// Runs one browser test: starts a server on SQLite with `extra` configuration, runs `body`,
/// and closes every browser it opened. If the body fails, each browser's screenshot and HTML are
/// saved under `target/tmp/browser/` and named in the failure.
pub async fn run<F, Fut>(test: &str, extra: &str, body: F)
where
    F: FnOnce(Suite) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (driver, chromium) = match driver() {
        Driver::Ready { url, chromium } => (url, chromium),
        Driver::Missing(reason) => {
            eprintln!("browser test {test} SKIPPED: {reason}");
            return;
        }
    };
    let server = Arc::new(Server::start(Backend::Sqlite, extra).await.expect("SQLite always starts"));
    let suite = Suite { server, tabs: Arc::default(), driver, chromium };
    let outcome = tokio::spawn(body(suite.clone())).await;
    let tabs = std::mem::take(&mut *suite.tabs.lock().unwrap());
    if outcome.is_err() {
        let mut saved = Vec::new();
        for tab in &tabs {
            let stem = artifacts_dir().join(format!("{test}-{}", tab.label));
            tab.screenshot(&stem.with_extension("png")).await;
            std::fs::write(stem.with_extension("html"), tab.html().await).unwrap();
            saved.push(format!("{} at {}: {}.png, .html", tab.label, tab.path().await, stem.display()));
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "browser test {test} failed; what each browser showed:\n  {}", saved.join("\n  "));
    }
    let mut violations = Vec::new();
    for tab in tabs {
        violations.extend(tab.policy_violations().await.into_iter().map(|v| format!("{}: {v}", tab.label)));
        let _ = tab.client.close().await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    assert!(
        violations.is_empty(),
        "browser test {test}: the Content-Security-Policy blocked:\n  {}",
        violations.join("\n  ")
    );
}

/// chromedriver's console log of a session (`goog:loggingPrefs`), read and emptied.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

impl Tab {
    /// What the browser's console said about the Content-Security-Policy since it was last asked.
    async fn policy_violations(&self) -> Vec<String> {
        let log = self.client.issue_cmd(BrowserLog).await.unwrap_or(Value::Null);
        log.as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["message"].as_str())
            .filter(|m| m.contains("Content Security Policy"))
            .map(str::to_string)
            .collect()
    }
}

/// WebDriver's WebAuthn extension (a virtual authenticator in the browser), which chromedriver
/// serves under the session: `path` below `session/{id}/webauthn/`.
#[derive(Debug)]
struct WebAuthn {
    method: axum::http::Method,
    path: String,
    body: Option<Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthn {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/webauthn/{}", session.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (self.method.clone(), self.body.as_ref().map(Value::to_string))
    }
}

impl Tab {
    /// Gives this browser a platform authenticator (a fingerprint reader, say) that verifies its
    /// user and consents to everything; `discoverable`: it can keep passkeys that name their
    /// account (a security key without storage cannot). Returns its id.
    pub async fn add_authenticator(&self, discoverable: bool) -> String {
        let body = json!({
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": discoverable,
            "hasUserVerification": true, "isUserConsenting": true, "isUserVerified": true,
        });
        let cmd = WebAuthn { method: axum::http::Method::POST, path: "authenticator".into(), body: Some(body) };
        let id = self
            .client
            .issue_cmd(cmd)
            .await
            .unwrap_or_else(|e| panic!("[{}] no virtual authenticator: {e}", self.label));
        id.as_str().expect("an authenticator id").to_string()
    }

    /// The credentials a virtual authenticator holds.
    pub async fn authenticator_credentials(&self, id: &str) -> Vec<Value> {
        let cmd =
            WebAuthn { method: axum::http::Method::GET, path: format!("authenticator/{id}/credentials"), body: None };
        self.client.issue_cmd(cmd).await.unwrap().as_array().cloned().unwrap_or_default()
    }

    /// Takes a virtual authenticator away (the device is lost, or in another pocket).
    pub async fn remove_authenticator(&self, id: &str) {
        let cmd = WebAuthn { method: axum::http::Method::DELETE, path: format!("authenticator/{id}"), body: None };
        self.client.issue_cmd(cmd).await.unwrap();
    }

    /// Waits until a page shows `needle` — one a script submitted, not a click: the page may
    /// change while it is read.
    pub async fn comes_to_show(&self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.client.execute("return document.body ? document.body.innerText : ''", vec![]).await;
            if text.ok().and_then(|t| t.as_str().map(|t| t.contains(needle))).unwrap_or(false) {
                break;
            }
            assert!(Instant::now() < deadline, "[{}] {} never showed \"{needle}\"", self.label, self.path().await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the browser is at `path` (a page a script submitted, not a click).
    pub async fn arrives_at(&self, path: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.path().await;
            if now == path {
                break;
            }
            assert!(Instant::now() < deadline, "[{}] still at {now}, not {path}, after {PATIENCE:?}", self.label);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.client.wait().at_most(PATIENCE).for_element(Locator::Css("body")).await.unwrap();
    }
}
