//! The demo's HTTP API, called over real HTTP on both backends: DRF shapes, pagination,
//! filters, errors, query counts per endpoint, and the profiler pages (also through a
//! headless Chromium when one is installed).

use std::net::SocketAddr;
use std::sync::Arc;

use demo::api::AppState;
use demo::models::{Message, Person, Thread};
use demo::schema::weave_message;
use demo::seed::{seed, SeedConfig};
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
    let config = SeedConfig {
        persons: 130,
        threads: 12,
        messages: 400,
        seed: 7,
        progress: false,
    };
    seed(&mut t.conn(), &config).expect("seed");
    let state = AppState::new(t.db.clone());
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
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
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
        assert_eq!(page1["next"], "/api/persons/?page=2");
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
        assert_eq!(page2["previous"], "/api/persons/");
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
            "/api/threads/?page=",
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
