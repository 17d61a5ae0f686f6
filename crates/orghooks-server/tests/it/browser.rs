//! `Browser`: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`; scripts/test installs them), one
//! chromedriver per test on a 127.0.0.1 port, killed with its browser when
//! the test ends. Pages are saved as screenshots under
//! `target/dashboard-screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const START_WITHIN: Duration = Duration::from_secs(20);
/// How long a page may take to show what a test waits for.
const WAIT: Duration = Duration::from_secs(20);

pub struct Browser {
    pub client: Client,
    driver: Child,
    test: String,
    width: u32,
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots")
}

/// Whether this machine has the browser; without it the tests skip, unless
/// scripts/test said it must be there.
fn available() -> bool {
    let found = Command::new("chromedriver")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found || std::env::var("ORGHOOKS_REQUIRE_BROWSER").is_err(),
        "chromedriver is missing: scripts/test installs it"
    );
    if !found {
        eprintln!("SKIPPED: no chromedriver; scripts/test installs chromium and chromium-driver");
    }
    found
}

impl Browser {
    /// A fresh browser `width` CSS pixels wide, or `None` (skip) without one.
    pub async fn start(test: &str, width: u32) -> Option<Self> {
        if !available() {
            return None;
        }
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut command = Command::new("chromedriver");
            command
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            #[cfg(unix)]
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            let driver = command.spawn().expect("chromedriver starts");
            let mut options = json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", format!("--window-size={width},900")]});
            if width < 600 {
                // A desktop window cannot be that narrow: a phone's viewport.
                options["mobileEmulation"] =
                    json!({"deviceMetrics": {"width": width, "height": 844, "pixelRatio": 2.0}});
            }
            let mut capabilities = serde_json::Map::new();
            capabilities.insert("goog:chromeOptions".into(), options);
            let deadline = tokio::time::Instant::now() + START_WITHIN;
            let mut driver = Some(driver);
            while tokio::time::Instant::now() < deadline {
                // chromedriver speaks plain HTTP on loopback: no TLS.
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                match ClientBuilder::new(connector)
                    .capabilities(capabilities.clone())
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await
                {
                    Ok(client) => {
                        return Some(Self {
                            client,
                            driver: driver.take().unwrap(),
                            test: test.to_owned(),
                            width,
                        });
                    }
                    // chromedriver is not listening yet: ask again shortly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
                if driver.as_mut().unwrap().try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: another one
                }
            }
            kill_group(driver.as_mut().unwrap());
        }
        panic!("chromedriver did not start on three ports");
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The page's HTML source, as the browser has it.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Whether the page is wider than the window (it scrolls sideways).
    pub async fn overflows(&self) -> bool {
        self.client
            .execute(
                "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap()
            .as_bool()
            .unwrap()
    }

    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    /// The text of the element `css` selects, once the page shows one
    /// (a form's answer may still be loading).
    pub async fn text_of(&self, css: &str) -> String {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Waits until the element `css` selects reads `text` (after a click
    /// that reloads the page it is on).
    pub async fn expect_text(&self, css: &str, text: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(), // between two pages
            };
            if now == text {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} reads {now:?}, not {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the browser is at `path` (after a click that navigates).
    pub async fn expect_path(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still at {now}, not {path}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Saves the page as `target/dashboard-screenshots/<test>-<page>.png`,
    /// the whole page on a desktop width (the window grows to hold it);
    /// first checks that each of its controls has a label and can be
    /// reached with the keyboard.
    pub async fn shot(&self, page: &str) -> PathBuf {
        let unlabelled = self
            .client
            .execute(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                   .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
                   .map(e => e.id || e.name)
                   .concat([...document.querySelectorAll('a, button, input, select, textarea')]
                   .filter(e => e.tabIndex < 0).map(e => 'not focusable: ' + (e.id || e.textContent)));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            unlabelled,
            json!([]),
            "{page}: controls without a label, or out of the keyboard's reach"
        );
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(900)
            .clamp(900, 4000) as u32;
        let tall = self.width >= 600 && height > 900;
        if tall {
            // The window's frame takes some of its height: a little more.
            self.client
                .set_window_size(self.width, height + 120)
                .await
                .unwrap();
        }
        let png = self.client.screenshot().await.unwrap();
        if tall {
            self.client.set_window_size(self.width, 900).await.unwrap();
        }
        std::fs::create_dir_all(screenshots()).unwrap();
        let path = screenshots().join(format!("{}-{page}.png", self.test));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the browser and its driver (as dropping it does).
    pub async fn close(self) {}
}

/// Ends chromedriver and the browser it started (same process group).
fn kill_group(driver: &mut Child) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{}", driver.id())])
        .status();
    let _ = driver.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}
