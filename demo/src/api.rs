//! The HTTP API: DRF's JSON shapes, page-number pagination and django-filter style
//! filtering, with every request profiled.
//!
//! | route | what | queries |
//! |---|---|---|
//! | `GET /api/persons/` | persons, 100 a page | 2 (rows, count) |
//! | `GET /api/threads/` | threads with nested messages and senders | 3 (threads, messages JOIN senders, count) |
//! | `GET /api/messages/` | messages with `sender` | 2 (rows JOIN senders, count) |
//! | `GET /api/messages/list_some/` | the talk's 100 `{sender, text}` | 1 |
//! | `GET /api/<kind>/<id>/` | one object, 404 when there is none | 1 or 2 |
//! | `GET /profile/` | recent requests: time, queries, database time, N+1 flags | 0 |
//! | `GET /profile/<id>` | one request's queries, call sites and plans | 0 |
//!
//! Query strings filter by field (`?deleted=false&thread=3`); soft-deleted rows are
//! hidden unless the `deleted` filter is given. Bad input gets a JSON error body:
//! `400 {"detail": ...}` for an unknown field or a bad value, `404 {"detail": "Invalid
//! page."}` for a bad page (as DRF does), `404 {"detail": "Not found."}` for an unknown id.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime};
use orm::paginate::{Page, PageLink};
use orm::prelude::*;
use orm::profile::{PlanPolicy, Profile, Profiler};
use orm::{Captured, Database, QuerySet};
use serde::Serialize;
use serde_json::json;

use crate::json::{full_name, MessageJson, PageJson, PersonJson, SenderText, ThreadJson};
use crate::models::{Message, Person, Thread};
use crate::profile_pages;
use crate::scenarios::N_PLUS_ONE_THRESHOLD;
use crate::schema::{weave_message, weave_person, weave_thread};

/// Rows per page, as the talk's `PageNumberPagination`.
pub const PAGE_SIZE: u64 = 100;
/// How many requests `/profile/` keeps.
pub const KEEP_PROFILES: usize = 200;

/// One profiled request.
#[derive(Debug, Clone)]
pub struct RequestProfile {
    /// Sequence number, the `<id>` of `/profile/<id>`.
    pub id: u64,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// Wall time of the handler, in milliseconds.
    pub ms: f64,
    /// Everything the handler sent to the database: the library's profile (plans
    /// are collected when the request's page is opened, not while it is served).
    pub profile: Profile,
}

impl RequestProfile {
    /// The statements the request sent.
    pub fn captured(&self) -> &Captured {
        self.profile.captured()
    }
}

/// What the handlers share.
pub struct AppState {
    db: Database,
    profiles: Mutex<VecDeque<RequestProfile>>,
    next_id: AtomicU64,
}

impl AppState {
    /// State over a database pool.
    pub fn new(db: Database) -> Arc<Self> {
        Arc::new(AppState {
            db,
            profiles: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// The recent requests, newest first.
    pub fn profiles(&self) -> Vec<RequestProfile> {
        self.profiles
            .lock()
            .map(|p| p.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// One recorded request.
    pub fn profile(&self, id: u64) -> Option<RequestProfile> {
        self.profiles
            .lock()
            .ok()
            .and_then(|p| p.iter().find(|r| r.id == id).cloned())
    }

    fn record(&self, mut profile: RequestProfile) {
        profile.id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut p) = self.profiles.lock() {
            if p.len() == KEEP_PROFILES {
                p.pop_front();
            }
            p.push_back(profile);
        }
    }
}

/// An API error with its status and a DRF-style `{"detail": ...}` body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
}

impl ApiError {
    fn bad_request(detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
        }
    }

    fn not_found(detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            detail: detail.into(),
        }
    }
}

impl From<orm::Error> for ApiError {
    fn from(e: orm::Error) -> Self {
        if matches!(
            e,
            orm::Error::EmptyPage { .. } | orm::Error::PageNotAnInteger { .. }
        ) {
            // DRF answers every bad page number alike.
            return ApiError::not_found("Invalid page.");
        }
        let status = match &e {
            orm::Error::NotFound { .. } => StatusCode::NOT_FOUND,
            orm::Error::PoolTimeout { .. } | orm::Error::Connect { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let detail = if status == StatusCode::NOT_FOUND {
            "Not found.".to_owned()
        } else {
            e.to_string()
        };
        ApiError { status, detail }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "detail": self.detail }))).into_response()
    }
}

/// A handler's answer: the JSON body, serialised straight from the rows.
type ApiResult = Result<Vec<u8>, ApiError>;

fn to_json<T: Serialize + ?Sized>(value: &T) -> ApiResult {
    crate::json::to_vec(value).map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        detail: e.to_string(),
    })
}
type Params = Vec<(String, String)>;

/// The router over shared state.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/persons/", get(persons))
        .route("/api/threads/", get(threads))
        .route("/api/messages/", get(messages))
        .route("/api/messages/list_some/", get(list_some))
        .route("/api/{kind}/{id}/", get(detail))
        .route("/profile/", get(profile_list))
        .route("/profile/{id}", get(profile_detail))
        .fallback(|| async { ApiError::not_found("Not found.") })
        .with_state(state)
}

/// Runs a handler on a blocking thread with a pooled connection, inside a capture
/// scope, and records the request for `/profile/`.
async fn profiled(
    state: Arc<AppState>,
    method: Method,
    uri: Uri,
    handler: impl FnOnce(&mut AnyConnection) -> ApiResult + Send + 'static,
) -> Response {
    let state2 = state.clone();
    let label = format!("{method} {uri}");
    let joined = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let scope = Profiler::new(label)
            .plans(PlanPolicy::EveryShape)
            .n_plus_one_threshold(N_PLUS_ONE_THRESHOLD)
            .start();
        let result = (|| -> ApiResult {
            let mut conn = state2.db.get()?;
            handler(&mut conn)
        })();
        (result, scope.finish(), started.elapsed())
    })
    .await;
    let (result, profile, elapsed) = match joined {
        Ok(parts) => parts,
        Err(e) => {
            return ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                detail: format!("handler failed: {e}"),
            }
            .into_response()
        }
    };
    let response = match result {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    };
    state.record(RequestProfile {
        id: 0,
        method: method.to_string(),
        path: uri.to_string(),
        status: response.status().as_u16(),
        ms: elapsed.as_secs_f64() * 1e3,
        profile,
    });
    response
}

// ---- query-string parsing -------------------------------------------------------

fn int(field: &str, value: &str) -> Result<i64, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{field}`: `{value}` is not an integer")))
}

fn boolean(field: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "True" | "1" => Ok(true),
        "false" | "False" | "0" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "`{field}`: `{value}` is not a boolean (true or false)"
        ))),
    }
}

fn datetime(field: &str, value: &str) -> Result<NaiveDateTime, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|d| d.naive_utc())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "`{field}`: `{value}` is not a date-time (like 2024-03-01T12:00:00Z)"
            ))
        })
}

fn unknown_field(field: &str, fields: &[&str]) -> ApiError {
    ApiError::bad_request(format!(
        "unknown filter field `{field}`; the fields are: {}",
        fields.join(", ")
    ))
}

/// The raw `?page=` text (missing means page 1); the paginator parses it.
fn raw_page(params: &Params) -> &str {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == "page")
        .map_or("1", |(_, v)| v.as_str())
}

/// A library page as DRF's four keys, with the rows turned into their JSON shape.
fn page_body<'a, R, T: Serialize>(page: &'a Page<R>, json: impl Fn(&'a R) -> T) -> ApiResult {
    let results: Vec<T> = page.results.iter().map(json).collect();
    let link = |l: &Option<PageLink>| match l {
        Some(PageLink::Url(u)) => Some(u.clone()),
        Some(PageLink::Number(n)) => Some(n.to_string()),
        None => None,
    };
    let (next, previous) = (link(&page.next), link(&page.previous));
    to_json(&PageJson {
        count: page.count,
        next: next.as_deref(),
        previous: previous.as_deref(),
        results: &results,
    })
}

const PERSON_FIELDS: &[&str] = &[
    "id",
    "created",
    "updated",
    "deleted",
    "first_name",
    "last_name",
    "email_address",
];
const THREAD_FIELDS: &[&str] = &["id", "created", "updated", "deleted", "title"];
const MESSAGE_FIELDS: &[&str] = &[
    "id", "created", "updated", "deleted", "text", "sent_by", "thread",
];

fn filter_persons(mut qs: QuerySet<Person>, params: &Params) -> Result<QuerySet<Person>, ApiError> {
    use weave_person as t;
    for (k, v) in params {
        qs = match k.as_str() {
            "page" => qs,
            "id" => qs.filter(t::id.eq(int(k, v)?)),
            "created" => qs.filter(t::created.eq(datetime(k, v)?)),
            "updated" => qs.filter(t::updated.eq(datetime(k, v)?)),
            "deleted" => qs.with_deleted().filter(t::deleted.eq(boolean(k, v)?)),
            "first_name" => qs.filter(t::first_name.eq(v.clone())),
            "last_name" => qs.filter(t::last_name.eq(v.clone())),
            "email_address" => qs.filter(t::email_address.eq(v.clone())),
            other => return Err(unknown_field(other, PERSON_FIELDS)),
        };
    }
    Ok(qs)
}

fn filter_threads(mut qs: QuerySet<Thread>, params: &Params) -> Result<QuerySet<Thread>, ApiError> {
    use weave_thread as t;
    for (k, v) in params {
        qs = match k.as_str() {
            "page" => qs,
            "id" => qs.filter(t::id.eq(int(k, v)?)),
            "created" => qs.filter(t::created.eq(datetime(k, v)?)),
            "updated" => qs.filter(t::updated.eq(datetime(k, v)?)),
            "deleted" => qs.with_deleted().filter(t::deleted.eq(boolean(k, v)?)),
            "title" => qs.filter(t::title.eq(v.clone())),
            other => return Err(unknown_field(other, THREAD_FIELDS)),
        };
    }
    Ok(qs)
}

fn filter_messages(
    mut qs: QuerySet<Message>,
    params: &Params,
) -> Result<QuerySet<Message>, ApiError> {
    use weave_message as t;
    for (k, v) in params {
        qs = match k.as_str() {
            "page" => qs,
            "id" => qs.filter(t::id.eq(int(k, v)?)),
            "created" => qs.filter(t::created.eq(datetime(k, v)?)),
            "updated" => qs.filter(t::updated.eq(datetime(k, v)?)),
            "deleted" => qs.with_deleted().filter(t::deleted.eq(boolean(k, v)?)),
            "text" => qs.filter(t::text.eq(v.clone())),
            "sent_by" => qs.filter(t::sent_by_id.eq(int(k, v)?)),
            "thread" => qs.filter(t::thread_id.eq(int(k, v)?)),
            other => return Err(unknown_field(other, MESSAGE_FIELDS)),
        };
    }
    Ok(qs)
}

// ---- handlers ---------------------------------------------------------------------

async fn persons(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    Query(params): Query<Params>,
) -> Response {
    let here = uri.to_string();
    profiled(state, method, uri, move |conn| {
        let qs = filter_persons(Person::objects(), &params)?;
        let page = qs
            .paginate(PAGE_SIZE)
            .links(&here)
            .page(conn, raw_page(&params))?;
        page_body(&page, PersonJson::from)
    })
    .await
}

async fn threads(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    Query(params): Query<Params>,
) -> Response {
    let here = uri.to_string();
    profiled(state, method, uri, move |conn| {
        let qs = filter_threads(Thread::objects(), &params)?;
        let page = qs.paginate(PAGE_SIZE).links(&here).page_with(
            conn,
            raw_page(&params),
            |qs, conn| {
                qs.prefetch(Thread::messages().prefetch(Message::sent_by))
                    .all(conn)
            },
        )?;
        // Senders as their own hop: each of them fetched and decoded once, not once per
        // message (a foreign key guarantees every message has one).
        page_body(&page, |(t, messages)| {
            let messages = messages
                .iter()
                .filter_map(|(m, p)| p.as_deref().map(|p| MessageJson::new(m, p)))
                .collect();
            ThreadJson::with_messages(t, messages)
        })
    })
    .await
}

async fn messages(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    Query(params): Query<Params>,
) -> Response {
    let here = uri.to_string();
    profiled(state, method, uri, move |conn| {
        let qs = filter_messages(Message::objects(), &params)?;
        let page = qs.paginate(PAGE_SIZE).links(&here).page_with(
            conn,
            raw_page(&params),
            |qs, conn| qs.select_related(Message::sent_by).all(conn),
        )?;
        page_body(&page, |(m, p)| MessageJson::new(m, p))
    })
    .await
}

async fn list_some(State(state): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    profiled(state, method, uri, move |conn| {
        let rows = Message::objects()
            .select_related(Message::sent_by)
            .limit(100)
            .all(conn)?;
        let out: Vec<SenderText<'_>> = rows
            .iter()
            .map(|(m, p)| SenderText {
                sender: full_name(p),
                text: &m.text,
            })
            .collect();
        to_json(&out)
    })
    .await
}

async fn detail(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    Path((kind, id)): Path<(String, String)>,
) -> Response {
    profiled(state, method, uri, move |conn| {
        let id: i64 = id.parse().map_err(|_| ApiError::not_found("Not found."))?;
        match kind.as_str() {
            "persons" => {
                let p = Person::objects()
                    .filter(weave_person::id.eq(id))
                    .get(conn)?;
                to_json(&PersonJson::from(&p))
            }
            "threads" => {
                let mut rows = Thread::objects()
                    .filter(weave_thread::id.eq(id))
                    .prefetch(Thread::messages().select_related(Message::sent_by))
                    .all(conn)?;
                let (t, m) = rows
                    .pop()
                    .ok_or_else(|| ApiError::not_found("Not found."))?;
                to_json(&ThreadJson::new(&t, &m))
            }
            "messages" => {
                let mut rows = Message::objects()
                    .filter(weave_message::id.eq(id))
                    .select_related(Message::sent_by)
                    .all(conn)?;
                let (m, p) = rows
                    .pop()
                    .ok_or_else(|| ApiError::not_found("Not found."))?;
                to_json(&MessageJson::new(&m, &p))
            }
            _ => Err(ApiError::not_found("Not found.")),
        }
    })
    .await
}

async fn profile_list(State(state): State<Arc<AppState>>) -> Html<String> {
    Html(profile_pages::list(&state.profiles()))
}

async fn profile_detail(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some(mut request) = id.parse::<u64>().ok().and_then(|id| state.profile(id)) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>No such request</h1>".to_owned()),
        )
            .into_response();
    };
    // Plans are collected now, outside the request's own time, one per statement shape.
    let db = state.db.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        if let Ok(mut conn) = db.get() {
            request.profile.collect_plans(&mut conn);
        }
        profile_pages::detail(&request)
    })
    .await;
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(format!(
                "<h1>{}</h1>",
                profile_pages::escape(&e.to_string())
            )),
        )
            .into_response(),
    }
}
