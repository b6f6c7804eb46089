//! The playground page in a real browser: Debian's chromium, driven through
//! chromedriver (WebDriver, `fantoccini`), against a real server on the
//! fixture. Without a browser the tests say so and pass, unless
//! `TESSERA_REQUIRE_BROWSER` is set (CI sets it: there they never skip).
//! `TESSERA_UPDATE_SCREENSHOT=1` rewrites `docs/playground.png`.

use crate::common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver in its own process group (killed whole, browser included,
/// when dropped) and a session on it.
struct Browser {
    client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.driver.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.driver.wait();
    }
}

async fn browser(width: u32, height: u32) -> Option<Browser> {
    if !Path::new(CHROMIUM).exists() || !Path::new(DRIVER).exists() {
        let why = "no browser: apt-get install chromium chromium-driver";
        assert!(
            std::env::var_os("TESSERA_REQUIRE_BROWSER").is_none(),
            "{why}"
        );
        eprintln!("SKIPPED playground browser test: {why}");
        return None;
    }
    use std::os::unix::process::CommandExt;
    let mut driver = Command::new(DRIVER)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    // It says its port once it listens.
    let out = driver.stdout.take().expect("driver stdout");
    let port = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            let rest = l.split("started successfully on port ").nth(1)?;
            rest.trim_end_matches('.').trim().parse::<u16>().ok()
        })
        .expect("chromedriver port");
    let caps = json!({"goog:chromeOptions": {"binary": CHROMIUM, "args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        format!("--window-size={width},{height}"), "--force-device-scale-factor=1",
    ]}});
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let http = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(http)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("webdriver session");
    Some(Browser { client, driver })
}

/// Waits in the page until `condition` (a JS expression) is truthy, and
/// returns its value; the browser checks it every 25 ms (no fixed sleep).
async fn until(c: &Client, condition: &str) -> Value {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         const check = () => {{ let v; try {{ v = ({condition}); }} catch (e) {{ v = null; }}
           if (v) done(v); else setTimeout(check, 25); }};
         check();"
    );
    match c.execute_async(&script, vec![]).await {
        Ok(v) => v,
        Err(e) => {
            let page = js(c, "document.body.innerText + JSON.stringify(document.querySelector('figure')?.dataset)").await;
            panic!("waiting for `{condition}`: {e}; the page says: {page}")
        }
    }
}

/// The page's element with this id.
async fn field(c: &Client, id: &str) -> fantoccini::elements::Element {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
}

async fn js(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![])
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// A picture worth drawing a plan on: bands and a disc.
fn picture(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (cx, cy) = (x as i64 - w as i64 * 2 / 3, y as i64 - h as i64 / 2);
        if cx * cx + cy * cy < (h as i64 / 4).pow(2) {
            image::Rgb([230, 120, 40])
        } else {
            image::Rgb([(x * 255 / w) as u8, (y * 200 / h) as u8 + 40, 170])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// The server's own preview of the image under the page's options.
async fn preview(s: &TestServer, url: &str, detail: &str, tiling: Option<&str>) -> Value {
    let mut image_url = json!({"url": url, "detail": detail});
    if let Some(t) = tiling {
        image_url["tiling"] = json!(t);
    }
    let body = json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": image_url}]}]});
    let (status, v) = s.post_to("/v1/chat/completions/input_tokens", &body).await;
    assert_eq!(status, 200, "{v}");
    v["images"][0].clone()
}

/// Waits until the page's figure shows `plan` (the server's preview): as
/// many tiles drawn as it has tile boxes, and its price; returns the caption.
async fn shows(c: &Client, plan: &Value) -> String {
    let tiles = plan["tile_boxes"].as_array().map_or(0, Vec::len);
    let tokens = &plan["tokens"];
    let v = until(
        c,
        &format!(
            "(() => {{ const f = document.querySelector('figure.attachment');
              return f && f.dataset.tokens === '{tokens}' && f.dataset.tiles === '{tiles}'
                && f.querySelector('figcaption').textContent; }})()"
        ),
    )
    .await;
    v.as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_plans_prices_and_chats_in_a_real_browser() {
    let Some(b) = browser(1200, 900).await else {
        return;
    };
    let c = &b.client;
    let s = start_mlp(&["--api-key", "sesame"]).await;
    let s_open = start_mlp(&[]).await;
    c.goto(&format!("{}/", s.base)).await.unwrap();
    // `/` redirects to the page; the API wants a key, so the page asks.
    assert!(c.current_url().await.unwrap().path().ends_with("/ui/"));
    until(c, "document.getElementById('key-dialog').open").await;
    let key = field(c, "key").await;
    key.send_keys("wrong\n").await.unwrap();
    until(
        c,
        "document.getElementById('key-error').textContent.includes('refused')",
    )
    .await;
    key.send_keys("sesame\n").await.unwrap();
    let model = until(c, "document.querySelector('#model option')?.value").await;
    assert_eq!(model, "tiny-text");
    assert_eq!(
        js(c, "document.getElementById('key-dialog').open").await,
        false
    );

    // An image: the plan drawn and the price shown are the server's.
    let file = std::env::temp_dir().join(format!("tessera-ui-{}.png", std::process::id()));
    let png = picture(400, 240);
    std::fs::write(&file, &png).unwrap();
    let url = data_url(&png, "image/png");
    let input = field(c, "file").await;
    input.send_keys(file.to_str().unwrap()).await.unwrap();
    let pick = |id: &'static str, v: &'static str| async move {
        field(c, id).await.select_by_value(v).await.unwrap();
    };
    // The server's default here is tiles (`fit`) plus a thumbnail.
    let tiled = preview(&s_open, &url, "auto", None).await;
    let n = tiled["tile_boxes"].as_array().unwrap().len();
    assert!(n > 1, "{tiled}");
    let caption = shows(c, &tiled).await;
    assert!(
        caption.contains(&format!("{n} tiles + thumbnail")),
        "{caption}"
    );
    // `native` on this family: one whole image on its padded square.
    pick("tiling", "native").await;
    let whole = preview(&s_open, &url, "auto", Some("native")).await;
    let caption = shows(c, &whole).await;
    assert!(
        caption.contains("whole image") && caption.contains("padded"),
        "{caption}"
    );
    // `fit` at `high`, then `low`: the plan and the price redrawn each time.
    pick("tiling", "fit").await;
    pick("detail", "high").await;
    shows(c, &preview(&s_open, &url, "high", Some("fit")).await).await;
    if std::env::var_os("TESSERA_UPDATE_SCREENSHOT").is_some() {
        field(c, "prompt")
            .await
            .send_keys("What is in this picture?")
            .await
            .unwrap();
        until(c, "document.getElementById('prompt-price').dataset.tokens").await;
        let shot = c.screenshot().await.unwrap();
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/playground.png"),
            shot,
        )
        .unwrap();
        field(c, "prompt").await.clear().await.unwrap();
    }
    pick("detail", "low").await;
    let caption = shows(c, &preview(&s_open, &url, "low", Some("fit")).await).await;
    assert!(caption.contains("thumbnail only"), "{caption}");

    // The whole prompt's price before sending: text and image together.
    field(c, "prompt")
        .await
        .send_keys("Describe it.")
        .await
        .unwrap();
    let body = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe it."},
        {"type": "image_url", "image_url": {"url": url, "detail": "low", "tiling": "fit"}}]}]});
    let (_, whole) = s_open
        .post_to("/v1/chat/completions/input_tokens", &body)
        .await;
    let want = &whole["input_tokens"];
    let shown = until(
        c,
        &format!("document.getElementById('prompt-price').dataset.tokens === '{want}' && document.getElementById('prompt-price').textContent"),
    )
    .await;
    assert!(
        shown.as_str().unwrap().contains("left of 4096")
            || shown.as_str().unwrap().contains("of 4096 left"),
        "{shown}"
    );

    // Send: the answer streams in and ends with its usage.
    field(c, "answer-tokens")
        .await
        .send_keys("6")
        .await
        .unwrap();
    field(c, "send").await.click().await.unwrap();
    let end = until(c, "document.querySelector('li.assistant')?.dataset.finish").await;
    assert_eq!(end, "length");
    let answer = js(
        c,
        "document.querySelector('li.assistant .answer').textContent",
    )
    .await;
    assert!(!answer.as_str().unwrap().is_empty());
    let meta = js(
        c,
        "document.querySelector('li.assistant .meta').textContent",
    )
    .await;
    assert!(meta.as_str().unwrap().contains("first token"), "{meta}");
    assert_eq!(
        js(c, "document.querySelectorAll('li.user img.sent').length").await,
        1
    );

    // Stop ends a stream that would run to the end of the context.
    js(c, "document.getElementById('answer-tokens').value = ''").await;
    field(c, "prompt")
        .await
        .send_keys("And again?\n")
        .await
        .unwrap();
    until(
        c,
        "document.querySelectorAll('li.assistant')[1]?.querySelector('.answer').textContent",
    )
    .await;
    field(c, "stop").await.click().await.unwrap();
    let end = until(
        c,
        "document.querySelectorAll('li.assistant')[1].dataset.finish",
    )
    .await;
    assert_eq!(end, "stopped");
    assert_eq!(js(c, "document.getElementById('error').hidden").await, true);

    // A forced tool call is shown as such.
    c.find(Locator::Css("#tools-box summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let tools = r#"[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 5}}, "required": ["city"]}}}]"#;
    field(c, "tools").await.send_keys(tools).await.unwrap();
    pick("tool-choice", "required").await;
    // One call, greedy: the fixture's call is then reproducible.
    let one = field(c, "parallel-tools").await;
    one.click().await.unwrap();
    let t = field(c, "temperature").await;
    t.send_keys("0").await.unwrap();
    field(c, "answer-tokens")
        .await
        .send_keys("200")
        .await
        .unwrap();
    field(c, "prompt")
        .await
        .send_keys("Weather?\n")
        .await
        .unwrap();
    let end = until(
        c,
        "document.querySelectorAll('li.assistant')[2]?.dataset.finish",
    )
    .await;
    assert_eq!(end, "tool_calls");
    let call = js(
        c,
        "document.querySelectorAll('li.assistant')[2].querySelector('.call').textContent",
    )
    .await;
    assert!(
        call.as_str()
            .unwrap()
            .starts_with("tool call: get_weather({"),
        "{call}"
    );

    // A reload keeps the key for this tab's session; the conversation is gone.
    c.refresh().await.unwrap();
    until(c, "document.querySelector('#model option')").await;
    assert_eq!(
        js(c, "document.getElementById('key-dialog').open").await,
        false
    );
    assert_eq!(
        js(c, "document.querySelectorAll('li.turn').length").await,
        0
    );
    let _ = std::fs::remove_file(&file);
    drop(b);

    // A new browser session asks for the key again.
    let Some(b2) = browser(1200, 900).await else {
        return;
    };
    b2.client.goto(&format!("{}/ui", s.base)).await.unwrap();
    until(&b2.client, "document.getElementById('key-dialog').open").await;
}

/// At 360 px wide nothing overflows sideways, and every control has a label.
#[tokio::test]
async fn the_playground_fits_a_phone_and_labels_its_controls() {
    let Some(b) = browser(360, 800).await else {
        return;
    };
    let c = &b.client;
    let s = start_mlp(&[]).await;
    c.goto(&format!("{}/ui", s.base)).await.unwrap();
    until(c, "document.querySelector('#model option')").await;
    let wide = js(
        c,
        "document.documentElement.scrollWidth - window.innerWidth",
    )
    .await;
    assert!(wide.as_i64().unwrap() <= 0, "{wide} px too wide at 360 px");
    let unlabeled = js(
        c,
        "[...document.querySelectorAll('input, select, textarea')].filter(e => !e.labels || !e.labels.length).map(e => e.id)",
    )
    .await;
    assert_eq!(unlabeled, json!([]));
}

/// `--no-ui` serves no page; the page itself is public and sets a strict CSP.
#[tokio::test]
async fn the_page_is_public_with_a_strict_policy_and_can_be_turned_off() {
    let s = start_mlp(&["--api-key", "k"]).await;
    let r = s
        .client
        .get(format!("{}/ui/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let js = s
        .client
        .get(format!("{}/ui/app.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let off = start_mlp(&["--no-ui"]).await;
    let r = off
        .client
        .get(format!("{}/ui/", off.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
