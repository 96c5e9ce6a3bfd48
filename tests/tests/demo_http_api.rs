//! The demo's HTTP API, called over real HTTP on both backends: DRF shapes, pagination,
//! filters, errors, query counts per endpoint, and the profiler pages (also through a
//! headless Chromium when one is installed).

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use demo::api::{ApiConfig, AppState};
use demo::models::{Message, Person, Thread};
use demo::schema::weave_message;
use demo::seed::{seed, SeedConfig};
use demo::server::ServeConfig;
use orm::prelude::*;
use orm_tests::{on_both_backends, TestDb};
use serde_json::Value;

struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Seeds a small dataset (more than one page of persons) and starts the API on a free
/// port of 127.0.0.1.
fn start(t: &TestDb) -> Server {
    seed_small(t);
    start_with(t.db.clone(), ApiConfig::default(), serve_config())
}

fn seed_small(t: &TestDb) {
    let config = SeedConfig {
        persons: 130,
        threads: 12,
        messages: 400,
        seed: 7,
        progress: false,
    };
    seed(&mut t.conn(), &config).expect("seed");
}

/// The tests' server settings: a short header-read timeout, so that the tests of
/// idle connections end soon.
fn serve_config() -> ServeConfig {
    ServeConfig {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 64,
    }
}

/// Starts the API over `db` with `config` on a free port of 127.0.0.1.
fn start_with(db: orm::Database, config: ApiConfig, serve: ServeConfig) -> Server {
    let state = AppState::with_config(db, config);
    let router = demo::api::router(state.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("send");
            demo::server::serve(listener, router, serve, async {
                let _ = stop_rx.await;
            })
            .await
            .expect("serve");
        });
    });
    let addr = addr_rx.recv().expect("server address");
    Server {
        addr,
        state,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

impl Server {
    /// GET `path`: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .get(&format!("http://{}{path}", self.addr))
            .call()
            .expect("request");
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().expect("body");
        (status, body)
    }

    /// `method path` with extra headers: (status, headers, body).
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, ureq::http::HeaderMap, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .build()
            .into();
        let uri = format!("http://{}{path}", self.addr);
        let mut builder = ureq::http::Request::builder().method(method).uri(&uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut resp = agent
            .run(builder.body(()).expect("request"))
            .expect("response");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        (status, headers, body)
    }

    /// Sends `raw` bytes on a new connection and reads until the server closes it
    /// (or 20 s pass): what the server answered.
    fn raw(&self, raw: &[u8]) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(raw).expect("send");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The origin of this server's links.
    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GET `path` as JSON, with the number of data queries the request sent.
    fn json(&self, path: &str) -> (u16, Value, usize) {
        let (status, body) = self.get(path);
        let value: Value = serde_json::from_str(&body).expect("JSON body");
        let last = self.state.profiles().into_iter().next().expect("profiled");
        assert_eq!(last.path, path, "the newest profile is this request");
        (status, value, last.captured().len())
    }
}

on_both_backends! {
    fn persons_are_paginated_like_drf(t) {
        let server = start(&t);
        let live = Person::objects().count(&mut t.conn()).unwrap();
        assert!(live > 100, "the fixture has more than one page");

        let (status, page1, queries) = server.json("/api/persons/");
        assert_eq!(status, 200);
        assert_eq!(queries, 2, "rows and count");
        assert_eq!(page1["count"], live);
        assert_eq!(page1["next"], format!("{}/api/persons/?page=2", server.origin()));
        assert_eq!(page1["previous"], Value::Null);
        let results = page1["results"].as_array().unwrap();
        assert_eq!(results.len(), 100);
        let keys: Vec<&str> = results[0].as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            ["id", "created", "updated", "deleted", "first_name", "last_name", "email_address"]
        );

        let (status, page2, _) = server.json("/api/persons/?page=2");
        assert_eq!(status, 200);
        assert_eq!(page2["results"].as_array().unwrap().len() as i64, live - 100);
        assert_eq!(page2["next"], Value::Null);
        assert_eq!(page2["previous"], format!("{}/api/persons/", server.origin()));
        let ids: std::collections::HashSet<i64> = results
            .iter()
            .chain(page2["results"].as_array().unwrap())
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids.len() as i64, live, "pages neither overlap nor skip");
    }

    fn bad_pages_get_drf_errors(t) {
        let server = start(&t);
        for path in [
            "/api/persons/?page=0",
            "/api/persons/?page=-1",
            "/api/persons/?page=abc",
            "/api/persons/?page=99",
            "/api/threads/?page=lastly",
        ] {
            let (status, body, _) = server.json(path);
            assert_eq!(status, 404, "{path}");
            assert_eq!(body["detail"], "Invalid page.", "{path}");
        }
    }

    fn the_threads_page_nests_messages_and_senders_in_four_queries(t) {
        let server = start(&t);
        let (status, page, queries) = server.json("/api/threads/");
        assert_eq!(status, 200);
        assert!(queries <= 4, "threads page sent {queries} queries");
        assert_eq!(queries, 4, "threads, their messages, the messages' senders, count");
        let conn = &mut t.conn();
        assert_eq!(page["count"], Thread::objects().count(conn).unwrap());
        let results = page["results"].as_array().unwrap();
        let keys: Vec<&str> = results[0].as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["id", "messages", "created", "updated", "deleted", "title"]);
        // Each thread's messages are what a naive per-thread query returns, with the
        // sender's full name.
        for thread in results {
            let id = thread["id"].as_i64().unwrap();
            let expected = Message::objects()
                .filter(weave_message::thread_id.eq(id))
                .select_related(Message::sent_by)
                .all(conn)
                .unwrap();
            let got = thread["messages"].as_array().unwrap();
            assert_eq!(got.len(), expected.len(), "thread {id}");
            for (g, (m, p)) in got.iter().zip(&expected) {
                assert_eq!(g["id"], m.id);
                assert_eq!(g["sender"], format!("{} {}", p.first_name, p.last_name));
                assert_eq!(g["thread"], id);
            }
        }
        let message_keys: Vec<&str> = results
            .iter()
            .find_map(|t| t["messages"].as_array().and_then(|m| m.first()))
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            message_keys,
            ["id", "sender", "created", "updated", "deleted", "text", "sent_by", "thread"]
        );
    }

    fn messages_filter_by_field_through_the_query_string(t) {
        let server = start(&t);
        let conn = &mut t.conn();
        let (status, page, queries) = server.json("/api/messages/?deleted=false&thread=3");
        assert_eq!(status, 200);
        assert_eq!(queries, 2);
        let expected = Message::objects()
            .filter(weave_message::thread_id.eq(3))
            .count(conn)
            .unwrap();
        assert!(expected > 0);
        assert_eq!(page["count"], expected);
        for m in page["results"].as_array().unwrap() {
            assert_eq!(m["thread"], 3);
            assert_eq!(m["deleted"], false);
        }

        let (_, deleted, _) = server.json("/api/messages/?deleted=true");
        let only_deleted = Message::objects().only_deleted().count(conn).unwrap();
        assert!(only_deleted > 0);
        assert_eq!(deleted["count"], only_deleted);
        assert!(deleted["results"].as_array().unwrap().iter().all(|m| m["deleted"] == true));

        for (path, needle) in [
            ("/api/messages/?colour=red", "unknown filter field `colour`"),
            ("/api/messages/?thread=three", "`thread`: `three` is not an integer"),
            ("/api/messages/?deleted=maybe", "`deleted`: `maybe` is not a boolean"),
            ("/api/persons/?created=yesterday", "`created`: `yesterday` is not a date-time"),
            ("/api/threads/?text=x", "unknown filter field `text`"),
        ] {
            let (status, body, _) = server.json(path);
            assert_eq!(status, 400, "{path}");
            let detail = body["detail"].as_str().unwrap();
            assert!(detail.contains(needle), "{path}: {detail}");
        }
    }

    fn list_some_is_one_query(t) {
        let server = start(&t);
        let (status, body, queries) = server.json("/api/messages/list_some/");
        assert_eq!(status, 200);
        assert_eq!(queries, 1);
        let items = body.as_array().unwrap();
        assert_eq!(items.len(), 100);
        let first = Message::objects().first(&mut t.conn()).unwrap().unwrap();
        assert_eq!(items[0]["text"], first.text);
        assert!(items.iter().all(|i| i["sender"].as_str().is_some_and(|s| s.contains(' '))));
    }

    fn details_and_unknown_ids(t) {
        let server = start(&t);
        let conn = &mut t.conn();
        let m = Message::objects().first(conn).unwrap().unwrap();
        let (status, body, queries) = server.json(&format!("/api/messages/{}/", m.id));
        assert_eq!((status, queries), (200, 1));
        assert_eq!(body["id"], m.id);
        assert_eq!(body["text"], m.text);
        let th = Thread::objects().first(conn).unwrap().unwrap();
        let (status, body, queries) = server.json(&format!("/api/threads/{}/", th.id));
        assert_eq!((status, queries), (200, 2));
        assert_eq!(body["title"], th.title);
        let p = Person::objects().first(conn).unwrap().unwrap();
        let (status, body, _) = server.json(&format!("/api/persons/{}/", p.id));
        assert_eq!(status, 200);
        assert_eq!(body["email_address"], p.email_address);
        let gone = Person::objects().only_deleted().first(conn).unwrap().unwrap();

        for path in [
            "/api/messages/999999/".to_owned(),
            "/api/threads/abc/".to_owned(),
            "/api/widgets/1/".to_owned(),
            format!("/api/persons/{}/", gone.id),
        ] {
            let (status, body, _) = server.json(&path);
            assert_eq!(status, 404, "{path}");
            assert_eq!(body["detail"], "Not found.", "{path}");
        }
    }

    fn profile_pages_list_requests_and_show_their_queries(t) {
        let server = start(&t);
        server.get("/api/threads/");
        server.get("/api/messages/list_some/");
        server.get("/api/messages/?thread=nope");
        let (status, html) = server.get("/profile/");
        assert_eq!(status, 200);
        for needle in ["/api/threads/", "/api/messages/list_some/", "/api/messages/?thread=nope", "400"] {
            assert!(html.contains(needle), "{needle} in {html}");
        }
        let threads = server
            .state
            .profiles()
            .into_iter()
            .find(|p| p.path == "/api/threads/")
            .unwrap();
        let (status, html) = server.get(&format!("/profile/{}", threads.id));
        assert_eq!(status, 200);
        // The library's report: every statement (the four data statements, and the
        // pool's health check kept apart), call sites, and one plan per shape.
        let data = threads.captured().len();
        assert_eq!(data, 4);
        assert_eq!(html.matches("<details class=\"query\"").count(), threads.captured().all().len());
        assert!(html.contains("weave_thread"));
        assert!(html.contains("demo/src/api.rs"), "call sites are shown");
        let plan_word = match t.backend() {
            Backend::Sqlite => "SCAN",
            Backend::Postgres => "Scan",
        };
        assert!(html.contains("<h2>Plans</h2>") && html.contains(plan_word), "plans are shown: {html}");
        assert!(html.contains("all requests"));
        assert_eq!(server.get("/profile/424242").0, 404);

        if let Some(dom) = headless_chromium_dom(&format!("http://{}/profile/", server.addr)) {
            assert_eq!(dom.matches("class=\"request\"").count(), 3, "{dom}");
            assert!(dom.contains("/api/messages/list_some/"));
            // The library's report for one request, as the browser built it.
            let report = headless_chromium_dom(&format!("http://{}/profile/{}", server.addr, threads.id))
                .expect("chromium ran once already");
            assert_eq!(report.matches("<details class=\"query\"").count(), threads.captured().all().len(), "{report}");
            assert!(report.contains("Timeline") && report.contains("<h2>Plans</h2>"), "{report}");
        }
    }
}

/// The status code and JSON body of a raw HTTP/1.1 response.
fn parse_raw(response: &str) -> (u16, Value) {
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {response:?}"));
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

on_both_backends! {
    fn links_are_absolute_from_an_allowed_host_or_the_base_url(t) {
        let server = start(&t);
        let addr = server.addr;
        // A request in absolute form names another host: links still use the Host.
        let (status, page) = parse_raw(&server.raw(
            format!("GET http://other.example/api/persons/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        ));
        assert_eq!(status, 200);
        assert_eq!(page["next"], format!("http://{addr}/api/persons/?page=2"));
        // A host that is not allowed is a 400, as Django's DisallowedHost.
        let (status, body) = parse_raw(&server.raw(
            b"GET /api/persons/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        ));
        assert_eq!(status, 400);
        assert!(body["detail"].as_str().unwrap().contains("ALLOWED_HOSTS"), "{body}");
        let (status, _) = parse_raw(&server.raw(
            b"GET /api/persons/ HTTP/1.1\r\nHost: bad_name!\r\nConnection: close\r\n\r\n",
        ));
        assert_eq!(status, 400);
        // Proxy headers are ignored unless trusted.
        let (_, page) = parse_raw(&server.raw(
            format!("GET /api/persons/ HTTP/1.1\r\nHost: {addr}\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: api.example.org\r\nConnection: close\r\n\r\n").as_bytes(),
        ));
        assert_eq!(page["next"], format!("http://{addr}/api/persons/?page=2"));
        drop(server);

        let proxied = ApiConfig {
            allowed_hosts: vec![".example.org".into()],
            trust_forwarded: true,
            ..ApiConfig::default()
        };
        let server = start_with(t.db.clone(), proxied, serve_config());
        let (status, page) = parse_raw(&server.raw(
            b"GET /api/persons/?page=2 HTTP/1.1\r\nHost: 10.0.0.7:8000\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: api.example.org\r\nConnection: close\r\n\r\n",
        ));
        assert_eq!(status, 200);
        assert_eq!(page["previous"], "https://api.example.org/api/persons/");
        drop(server);

        let based = ApiConfig {
            base_url: Some("https://threads.example.org/".into()),
            ..ApiConfig::default()
        };
        let server = start_with(t.db.clone(), based, serve_config());
        let (_, page, _) = server.json("/api/persons/");
        assert_eq!(page["next"], "https://threads.example.org/api/persons/?page=2");
    }

    fn pages_filters_and_methods_answer_as_drf(t) {
        let server = start(&t);
        let origin = server.origin();
        let (status, last, _) = server.json("/api/persons/?page=last");
        let (_, second, _) = server.json("/api/persons/?page=2");
        assert_eq!(status, 200);
        assert_eq!(last["results"], second["results"], "page=last is the last page");
        assert_eq!(last["previous"], format!("{origin}/api/persons/"));
        let (status, empty, _) = server.json("/api/persons/?page=");
        let (_, first, _) = server.json("/api/persons/");
        assert_eq!(status, 200);
        assert_eq!(empty["results"], first["results"], "an empty page is page 1");
        // A repeated filter takes the last value, as django-filter.
        let (status, page, _) = server.json("/api/messages/?thread=1&thread=3");
        assert_eq!(status, 200);
        assert!(page["count"].as_i64().unwrap() > 0);
        assert!(page["results"].as_array().unwrap().iter().all(|m| m["thread"] == 3), "{page}");
        // Other methods: DRF's 405 body with Allow; OPTIONS is metadata; HEAD is GET's head.
        let (status, headers, body) = server.request("POST", "/api/messages/", &[]);
        assert_eq!(status, 405);
        assert_eq!(headers["allow"], "GET, HEAD, OPTIONS");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["detail"], "Method \"POST\" not allowed.");
        let (status, _, body) = server.request("DELETE", "/api/persons/1/", &[]);
        assert_eq!(status, 405);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["detail"], "Method \"DELETE\" not allowed.");
        let (status, _, body) = server.request("OPTIONS", "/api/threads/", &[]);
        assert_eq!(status, 200);
        let meta: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(meta["name"], "Thread List");
        assert_eq!(meta["renders"][0], "application/json");
        let (status, headers, body) = server.request("HEAD", "/api/persons/", &[]);
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/json");
        assert!(body.is_empty());
        // Every 4xx has a JSON body: a path of bad UTF-8 too.
        let (status, body) = parse_raw(&server.raw(
            format!("GET /api/persons/%FF/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr).as_bytes(),
        ));
        assert_eq!(status, 400);
        assert!(body["detail"].is_string(), "{body}");
        let (status, body, _) = server.json("/api/nothing/here/");
        assert_eq!((status, body["detail"].as_str()), (404, Some("Not found.")));
    }

    fn database_errors_are_short_statuses(t) {
        seed_small(&t);
        // A pool of one whose connection the test holds: the request times out waiting.
        let url = t.url.clone();
        let db = orm::Database::builder(&url)
            .max_size(1)
            .connection_timeout(Duration::from_millis(200))
            .open()
            .unwrap();
        let server = start_with(db.clone(), ApiConfig::default(), serve_config());
        let held = db.get().unwrap();
        let (status, headers, body) = server.request("GET", "/api/persons/", &[]);
        assert_eq!(status, 503);
        assert_eq!(headers["retry-after"], "1");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["detail"], "Every database connection is busy: try again later.");
        drop(held);
        // A value the database cannot take: PostgreSQL's text holds no NUL.
        let (status, _, body) = server.request("GET", "/api/messages/?text=a%00b", &[]);
        match t.backend() {
            Backend::Postgres => {
                assert_eq!(status, 400, "{body}");
                let body: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(body["detail"], "The request holds a value the database cannot take.");
            }
            Backend::Sqlite => assert_eq!(status, 200, "{body}"),
        }
        drop(server);
        // With the debug flag the library's whole error is the detail.
        let debug = ApiConfig { debug: true, ..ApiConfig::default() };
        let server = start_with(db.clone(), debug, serve_config());
        let held = db.get().unwrap();
        let (status, _, body) = server.request("GET", "/api/persons/", &[]);
        drop(held);
        assert_eq!(status, 503);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body["detail"].as_str().unwrap().contains("200"), "{body}");
    }

    fn idle_and_slow_connections_are_closed_and_connections_are_capped(t) {
        seed_small(&t);
        let capped = ServeConfig { max_connections: 1, ..serve_config() };
        let server = start_with(t.db.clone(), ApiConfig::default(), capped);
        // Nothing sent, a header never finished, a kept-alive connection gone idle:
        // each is closed by the server (the read ends), not left open.
        assert_eq!(server.raw(b""), "");
        assert_eq!(server.raw(b"GET /api/persons/ HTTP/1.1\r\nHost: 127.0.0.1"), "");
        let answered = server.raw(format!("GET /api/messages/list_some/ HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes());
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
        // One connection at a time: while an idle one holds the slot, another client
        // waits for it, and is served once the idle one is closed.
        let idle = std::net::TcpStream::connect(server.addr).unwrap();
        let (status, _, _) = server.request("GET", "/api/messages/list_some/", &[]);
        assert_eq!(status, 200);
        drop(idle);
    }

    fn profile_pages_are_paged(t) {
        let server = start(&t);
        for _ in 0..55 {
            server.get("/api/messages/list_some/");
        }
        let (status, first) = server.get("/profile/");
        assert_eq!(status, 200);
        assert_eq!(first.matches("class=\"request\"").count(), 50);
        assert!(first.contains("page 1 of 2 (55 requests kept)") && first.contains("/profile/?page=2"), "{first}");
        let (_, second) = server.get("/profile/?page=2");
        assert_eq!(second.matches("class=\"request\"").count(), 5);
        assert_eq!(server.get("/profile/?page=0").0, 404);
    }
}

/// The DOM of `url` after a real headless Chromium loaded it, or `None` (with a loud
/// line) when no Chromium is installed and `DEMO_REQUIRE_CHROMIUM` is not `1`.
fn headless_chromium_dom(url: &str) -> Option<String> {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(browser) = browser else {
        assert!(
            std::env::var("DEMO_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "DEMO_REQUIRE_CHROMIUM=1 but no chromium is installed"
        );
        eprintln!(
            "!!! SKIPPED THE BROWSER CHECK: no chromium installed (apt-get install chromium)"
        );
        return None;
    };
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `value` has the shape `schema` (an OpenAPI 3.0 schema of `doc`) gives:
/// `$ref`, `oneOf`, objects with their required properties, arrays, integers,
/// booleans, strings (date-times in DRF's form), `nullable`.
fn conforms(value: &Value, schema: &Value, doc: &Value) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return conforms(value, &doc["components"]["schemas"][name], doc);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        return if options.iter().any(|o| conforms(value, o, doc).is_ok()) {
            Ok(())
        } else {
            Err(format!("{value} matches none of {schema}"))
        };
    }
    if value.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    let fits = match schema["type"].as_str() {
        Some("object") => {
            let object = value
                .as_object()
                .ok_or_else(|| format!("{value} is not an object"))?;
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                let field = object
                    .get(name)
                    .ok_or_else(|| format!("{value} lacks `{name}`"))?;
                conforms(field, &schema["properties"][name], doc)?;
            }
            true
        }
        Some("array") => {
            let items = value
                .as_array()
                .ok_or_else(|| format!("{value} is not an array"))?;
            for item in items {
                conforms(item, &schema["items"], doc)?;
            }
            true
        }
        Some("integer") => value.is_i64(),
        Some("boolean") => value.is_boolean(),
        Some("string") if schema["format"] == "date-time" => value
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        Some("string") => value.is_string(),
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        Err(format!("{value} is not {schema}"))
    }
}

/// A value for a query parameter of OpenAPI type `kind`: valid or not, with text that
/// needs percent-encoding.
fn parameter_value(kind: &Value) -> proptest::strategy::BoxedStrategy<String> {
    use proptest::prelude::*;
    let garbage = prop_oneof![
        Just(String::new()),
        Just("abc".to_owned()),
        Just("1e3".to_owned()),
        Just("x' OR '1'='1".to_owned()),
        Just("%".to_owned()),
        "[a-z &=?#]{0,6}",
    ];
    match (kind["type"].as_str(), kind["format"].as_str()) {
        (Some("integer"), _) => {
            prop_oneof![(-3_i64..500).prop_map(|n| n.to_string()), garbage].boxed()
        }
        (Some("boolean"), _) => {
            prop_oneof![Just("true".to_owned()), Just("false".to_owned()), garbage].boxed()
        }
        (Some("string"), Some("date-time")) => prop_oneof![
            Just("2024-01-01T00:00:00Z".to_owned()),
            Just("2024-13-01T00:00:00Z".to_owned()),
            garbage
        ]
        .boxed(),
        _ => prop_oneof![
            Just("1".to_owned()),
            Just("2".to_owned()),
            Just("last".to_owned()),
            Just("0".to_owned()),
            "[A-Za-z0-9 .@']{0,8}",
            garbage
        ]
        .boxed(),
    }
}

on_both_backends! {
    fn every_route_answers_as_its_openapi_document_says(t) {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        let server = start(&t);
        let (status, doc) = server.get("/api/schema/");
        assert_eq!(status, 200);
        let doc: Value = serde_json::from_str(&doc).unwrap();
        // Every route of the document, with the parameters it declares.
        let mut requests: Vec<BoxedStrategy<(String, String)>> = Vec::new();
        for (template, item) in doc["paths"].as_object().unwrap() {
            let operation = &item["get"];
            let parameters: Vec<&Value> = operation["parameters"].as_array().into_iter().flatten().collect();
            let template = template.clone();
            if template.contains('{') {
                let kinds: Vec<String> = parameters[0]["schema"]["enum"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect();
                let request = (proptest::sample::select(kinds), parameter_value(&json_integer()))
                    .prop_map(move |(kind, id)| {
                        let path = template.replace("{kind}", &kind).replace("{id}", &form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
                        (template_of(&path), path)
                    });
                requests.push(request.boxed());
                continue;
            }
            let query: Vec<BoxedStrategy<Option<(String, String)>>> = parameters
                .iter()
                .map(|p| {
                    let name = p["name"].as_str().unwrap().to_owned();
                    proptest::option::weighted(0.3, parameter_value(&p["schema"]))
                        .prop_map(move |v| v.map(|v| (name.clone(), v)))
                        .boxed()
                })
                .collect();
            let request = query.prop_map(move |pairs| {
                let mut encoded = form_urlencoded::Serializer::new(String::new());
                for (name, value) in pairs.into_iter().flatten() {
                    encoded.append_pair(&name, &value);
                }
                let query = encoded.finish();
                let path = if query.is_empty() { template.clone() } else { format!("{template}?{query}") };
                (template.clone(), path)
            });
            requests.push(request.boxed());
        }
        let strategy = proptest::strategy::Union::new(requests);
        let config = Config { cases: 64, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        runner
            .run(&strategy, |(template, path)| {
                let (status, body) = server.get(&path);
                let responses = &doc["paths"][&template]["get"]["responses"];
                let response = &responses[status.to_string()];
                prop_assert!(!response.is_null(), "{path}: status {status} is not in the document");
                let body: Value = serde_json::from_str(&body).map_err(|e| TestCaseError::fail(format!("{path}: {e}: {body}")))?;
                let schema = &response["content"]["application/json"]["schema"];
                conforms(&body, schema, &doc).map_err(|e| TestCaseError::fail(format!("{path} ({status}): {e}")))?;
                Ok(())
            })
            .unwrap();
    }
}

/// The OpenAPI schema of an integer.
fn json_integer() -> Value {
    serde_json::json!({ "type": "integer" })
}

/// The document's template of a detail path.
fn template_of(_path: &str) -> String {
    "/api/{kind}/{id}/".to_owned()
}
