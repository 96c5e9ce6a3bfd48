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
//! | `GET /api/schema/` | the OpenAPI 3.0 document of these routes | 0 |
//! | `GET /profile/` | recent requests: time, queries, database time, N+1 flags (50 a page) | 0 |
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
use axum::Extension;
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

/// One line of `/profile/`: what the list shows of a request, kept beside its
/// profile so that the list copies no statements.
#[derive(Debug, Clone)]
pub struct RequestSummary {
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
    /// Statements sent.
    pub queries: usize,
    /// Their time on the database, in milliseconds.
    pub db_ms: f64,
    /// N+1 groups: how many shapes, and the largest repeat count.
    pub n_plus_one: Option<(usize, usize)>,
}

impl RequestSummary {
    fn of(p: &RequestProfile) -> Self {
        let repeated = &p.profile.n_plus_one;
        RequestSummary {
            id: p.id,
            method: p.method.clone(),
            path: p.path.clone(),
            status: p.status,
            ms: p.ms,
            queries: p.captured().len(),
            db_ms: p.captured().database_time().as_secs_f64() * 1e3,
            n_plus_one: repeated.first().map(|r| (repeated.len(), r.count)),
        }
    }
}

/// How the API answers: its links, the hosts it serves, how much an error says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Links are absolute from this origin (`https://api.example.org`) whatever the
    /// request's `Host`; `None`: from the request's (allowed) host.
    pub base_url: Option<String>,
    /// The hosts served (Django's `ALLOWED_HOSTS`): a name (`api.example.org`), a
    /// domain and its subdomains (`.example.org`), or `*`. Matched without the port;
    /// any other `Host` is a 400.
    pub allowed_hosts: Vec<String>,
    /// Behind a proxy that sets them: read the scheme from `X-Forwarded-Proto` and the
    /// host from `X-Forwarded-Host` (Django's `SECURE_PROXY_SSL_HEADER` and
    /// `USE_X_FORWARDED_HOST`). Off by default: a client could set them.
    pub trust_forwarded: bool,
    /// Error bodies carry the library's whole error text (the driver's message
    /// included); off: a short `detail` only.
    pub debug: bool,
    /// Profile every request for `/profile/` (off: the handlers only, for measuring
    /// what profiling costs).
    pub profile: bool,
}

impl Default for ApiConfig {
    /// Links from the `Host`; the local names allowed (Django's default with
    /// `DEBUG`); no proxy headers; short error details.
    fn default() -> Self {
        ApiConfig {
            base_url: None,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            trust_forwarded: false,
            debug: false,
            profile: true,
        }
    }
}

/// A stored request: its summary and its profile, shared (never deep-copied).
struct Stored {
    summary: RequestSummary,
    request: Arc<RequestProfile>,
}

/// What the handlers share.
pub struct AppState {
    db: Database,
    config: ApiConfig,
    profiles: Mutex<VecDeque<Stored>>,
    next_id: AtomicU64,
}

/// Requests per `/profile/` page.
pub const PROFILES_PER_PAGE: usize = 50;

impl AppState {
    /// State over a database pool, with the default [`ApiConfig`].
    pub fn new(db: Database) -> Arc<Self> {
        Self::with_config(db, ApiConfig::default())
    }

    /// State over a database pool.
    pub fn with_config(db: Database, config: ApiConfig) -> Arc<Self> {
        Arc::new(AppState {
            db,
            config,
            profiles: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// The summaries of one page of recent requests (newest first), and how many
    /// requests are kept: the lock is held while the summaries of this page are
    /// copied, nothing more.
    pub fn summaries(&self, page: usize) -> (Vec<RequestSummary>, usize) {
        self.profiles
            .lock()
            .map(|p| {
                let rows = p
                    .iter()
                    .rev()
                    .skip(page.saturating_mul(PROFILES_PER_PAGE))
                    .take(PROFILES_PER_PAGE)
                    .map(|s| s.summary.clone())
                    .collect();
                (rows, p.len())
            })
            .unwrap_or_default()
    }

    /// The recent requests, newest first (shared, not copied).
    pub fn profiles(&self) -> Vec<Arc<RequestProfile>> {
        self.profiles
            .lock()
            .map(|p| p.iter().rev().map(|s| s.request.clone()).collect())
            .unwrap_or_default()
    }

    /// One recorded request.
    pub fn profile(&self, id: u64) -> Option<Arc<RequestProfile>> {
        self.profiles.lock().ok().and_then(|p| {
            p.iter()
                .find(|s| s.summary.id == id)
                .map(|s| s.request.clone())
        })
    }

    fn record(&self, mut profile: RequestProfile) {
        profile.id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stored = Stored {
            summary: RequestSummary::of(&profile),
            request: Arc::new(profile),
        };
        if let Ok(mut p) = self.profiles.lock() {
            if p.len() == KEEP_PROFILES {
                p.pop_front();
            }
            p.push_back(stored);
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
    /// A status with DRF's `{"detail": ...}` body.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }

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

impl ApiError {
    /// The status and short detail of a library error, by its kind (never by its
    /// text); with `debug`, the detail is the error's whole text.
    pub fn from_orm(e: &orm::Error, debug: bool) -> Self {
        use orm::DbErrorKind as Kind;
        let (status, detail) = match e {
            // DRF answers every bad page number alike.
            orm::Error::EmptyPage { .. } | orm::Error::PageNotAnInteger { .. } => {
                (StatusCode::NOT_FOUND, "Invalid page.")
            }
            orm::Error::NotFound { .. } => (StatusCode::NOT_FOUND, "Not found."),
            orm::Error::Connect { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unreachable: try again later.",
            ),
            orm::Error::PoolTimeout { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Every database connection is busy: try again later.",
            ),
            orm::Error::StatementTimeout { .. } | orm::Error::CountTimedOut { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database took too long to answer: try again later.",
            ),
            orm::Error::Busy { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is busy: try again later.",
            ),
            orm::Error::NulInText { .. } | orm::Error::TooManyBinds { .. } => (
                StatusCode::BAD_REQUEST,
                "The request holds a value the database cannot take.",
            ),
            _ => match e.db_kind() {
                Some(Kind::ConnectionLost) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database connection was lost: try again later.",
                ),
                Some(Kind::StatementTimeout | Kind::Busy) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database took too long to answer: try again later.",
                ),
                Some(Kind::NulInText | Kind::TooManyBinds) => (
                    StatusCode::BAD_REQUEST,
                    "The request holds a value the database cannot take.",
                ),
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "A server error occurred.",
                ),
            },
        };
        let detail = if debug && status != StatusCode::NOT_FOUND {
            e.to_string()
        } else {
            detail.to_owned()
        };
        ApiError { status, detail }
    }
}

/// Why a handler failed: an answer it chose, or a library error whose answer
/// depends on [`ApiConfig::debug`].
#[derive(Debug)]
pub enum Failure {
    /// A 4xx of the handler's own.
    Api(ApiError),
    /// A library error.
    Orm(orm::Error),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<orm::Error> for Failure {
    fn from(e: orm::Error) -> Self {
        Failure::Orm(e)
    }
}

impl Failure {
    fn into_api(self, debug: bool) -> ApiError {
        match self {
            Failure::Api(e) => e,
            Failure::Orm(e) => ApiError::from_orm(&e, debug),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "detail": self.detail }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

/// A handler's answer: the JSON body, serialised straight from the rows.
pub type ApiResult = Result<Vec<u8>, Failure>;

fn to_json<T: Serialize + ?Sized>(value: &T) -> ApiResult {
    crate::json::to_vec(value).map_err(|_| {
        Failure::Api(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "A server error occurred.",
        ))
    })
}
/// A query string's fields, in order.
pub type Params = Vec<(String, String)>;

/// An API route: `GET` (and `HEAD`), `OPTIONS` answered with DRF's metadata, and
/// DRF's 405 body for any other method.
fn api_route<H, T>(name: &'static str, handler: H) -> axum::routing::MethodRouter<Arc<AppState>>
where
    H: axum::handler::Handler<T, Arc<AppState>>,
    T: 'static,
{
    get(handler)
        .options(move || async move { metadata(name) })
        .fallback(method_not_allowed)
}

/// DRF's answer to `OPTIONS` (its `SimpleMetadata`) for a read-only view.
fn metadata(name: &str) -> Response {
    let body = json!({
        "name": name,
        "description": "",
        "renders": ["application/json"],
        "parses": ["application/json"],
    });
    ([(header::ALLOW, ALLOWED_METHODS)], Json(body)).into_response()
}

/// The methods every API route answers.
const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// DRF's 405: `{"detail": "Method \"POST\" not allowed."}` with `Allow`.
async fn method_not_allowed(method: Method) -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method \"{method}\" not allowed."),
    )
    .into_response();
    response.headers_mut().insert(
        header::ALLOW,
        header::HeaderValue::from_static(ALLOWED_METHODS),
    );
    response
}

/// The router over shared state.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/persons/", api_route("Person List", persons))
        .route("/api/threads/", api_route("Thread List", threads))
        .route("/api/messages/", api_route("Message List", messages))
        .route(
            "/api/messages/list_some/",
            api_route("List Some", list_some),
        )
        .route("/api/{kind}/{id}/", api_route("Instance", detail))
        .route(
            "/api/schema/",
            api_route("Schema", || async { Json(crate::openapi::document()) }),
        )
        .route("/profile/", get(profile_list))
        .route("/profile/{id}", get(profile_detail))
        .fallback(|| async { ApiError::not_found("Not found.") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            check_host,
        ))
        .with_state(state)
}

/// The scheme and host a request's absolute links start with (`http://host:port`).
#[derive(Debug, Clone)]
pub struct Origin(pub String);

/// Django's `get_host()`: the `Host` (or, when trusted, `X-Forwarded-Host`) checked
/// against the allowed hosts; a 400 otherwise. The request's own URI, which may be in
/// absolute form (`GET http://other.example/...`), never names the host of links.
async fn check_host(
    State(state): State<Arc<AppState>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let config = &state.config;
    let headers = request.headers();
    let forwarded = |name: &str| {
        config
            .trust_forwarded
            .then(|| headers.get(name)?.to_str().ok())
            .flatten()
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
    };
    let host = forwarded("x-forwarded-host").or_else(|| {
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
    });
    let Some(host) = host else {
        return ApiError::bad_request("Invalid HTTP_HOST header: the request names no host.")
            .into_response();
    };
    if let Err(e) = allowed_host(&host, &config.allowed_hosts) {
        return e.into_response();
    }
    let origin = match &config.base_url {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let scheme = forwarded("x-forwarded-proto")
                .filter(|s| s == "https" || s == "http")
                .unwrap_or_else(|| "http".to_owned());
            format!("{scheme}://{host}")
        }
    };
    request.extensions_mut().insert(Origin(origin));
    next.run(request).await
}

/// Django's host validation: a name of letters, digits, dots and hyphens (or an
/// IPv6 literal in brackets) with an optional port, matched without the port and in
/// lower case against `allowed` (`name`, `.domain` for it and its subdomains, `*`).
pub fn allowed_host(host: &str, allowed: &[String]) -> Result<(), ApiError> {
    let lower = host.to_ascii_lowercase();
    // The port without its colon: `None` when there is none.
    let (domain, port) = if let Some(rest) = lower.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, "")) => (format!("[{ip}]"), None),
            Some((ip, port)) => (
                format!("[{ip}]"),
                Some(port.strip_prefix(':').unwrap_or("?")),
            ),
            None => (String::new(), None),
        }
    } else {
        match lower.rsplit_once(':') {
            Some((domain, port)) => (domain.to_owned(), Some(port)),
            None => (lower.clone(), None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = !domain.is_empty()
        && (domain.starts_with('[')
            && domain[1..domain.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            || domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    if !port_ok || !name_ok {
        return Err(ApiError::bad_request(format!(
            "Invalid HTTP_HOST header: '{host}'. The domain name provided is not valid according to RFC 1034/1035."
        )));
    }
    let domain = domain.trim_end_matches('.');
    let matches = allowed.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        pattern == "*"
            || pattern == domain
            || pattern
                .strip_prefix('.')
                .is_some_and(|base| domain == base || domain.ends_with(&format!(".{base}")))
    });
    if matches {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid HTTP_HOST header: '{host}'. You may need to add '{domain}' to ALLOWED_HOSTS."
        )))
    }
}

/// Runs a handler's database work through the library's async face (one of the
/// pool's workers, a pooled connection), inside a profile that follows the request's
/// task, and records the request for `/profile/`.
async fn profiled(
    state: Arc<AppState>,
    method: Method,
    uri: Uri,
    handler: impl Fn(&mut AnyConnection) -> ApiResult + Send + 'static,
) -> Response {
    let label = format!("{method} {uri}");
    let started = Instant::now();
    // Every API route reads: on a replica when the database has one
    // (`demo --replica URL serve`), else on the primary.
    let work = state
        .db
        .run_read(orm::routing::Route::Auto, move |conn| Ok(handler(conn)));
    if !state.config.profile {
        let result = work
            .await
            .map_err(Failure::Orm)
            .and_then(|answer| answer)
            .map_err(|e| e.into_api(state.config.debug));
        return match result {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => e.into_response(),
        };
    }
    let (result, profile) = Profiler::new(label)
        .plans(PlanPolicy::EveryShape)
        .n_plus_one_threshold(N_PLUS_ONE_THRESHOLD)
        .run_async(work)
        .await;
    let elapsed = started.elapsed();
    let result = result
        .map_err(Failure::Orm)
        .and_then(|answer| answer)
        .map_err(|e| e.into_api(state.config.debug));
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

/// The raw `?page=` text, the last one given (missing or empty means page 1, as
/// DRF's `... or 1`); the paginator parses it (`last` included).
fn raw_page(params: &Params) -> &str {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == "page")
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
        .unwrap_or("1")
}

/// Each field's last value, as django-filter reads a `QueryDict` (`?thread=1&thread=52`
/// filters by 52), in the order the fields first appear.
fn last_values(params: Params) -> Params {
    let mut out: Params = Vec::with_capacity(params.len());
    for (k, v) in params {
        match out.iter_mut().find(|(seen, _)| *seen == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// The query string's fields, or a JSON 400 (bad percent-encoding, bad UTF-8).
fn query_params(
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Params, ApiError> {
    match query {
        Ok(Query(params)) => Ok(last_values(params)),
        Err(_) => Err(ApiError::bad_request("The query string is not valid.")),
    }
}

/// The absolute URL of this request (from its allowed origin), for page links.
fn here(origin: &Origin, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    format!("{}{path}", origin.0)
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
    Extension(origin): Extension<Origin>,
    method: Method,
    uri: Uri,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = match query_params(query) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let here = here(&origin, &uri);
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
    Extension(origin): Extension<Origin>,
    method: Method,
    uri: Uri,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = match query_params(query) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let here = here(&origin, &uri);
    profiled(state, method, uri, move |conn| {
        threads_body(conn, &params, &here)
    })
    .await
}

/// The body of `GET /api/threads/` for the query string `params`, its links from
/// `here` (the request's absolute URL): `demo bench` times this very function as
/// "threads page as served".
pub fn threads_body(conn: &mut AnyConnection, params: &Params, here: &str) -> ApiResult {
    let qs = filter_threads(Thread::objects(), params)?;
    let page =
        qs.paginate(PAGE_SIZE)
            .links(here)
            .page_with(conn, raw_page(params), |qs, conn| {
                qs.prefetch(Thread::messages().prefetch(Message::sent_by))
                    .all(conn)
            })?;
    // Senders as their own hop: each of them fetched and decoded once, not once per
    // message (a foreign key guarantees every message has one).
    page_body(&page, |(t, messages)| {
        let messages = messages
            .iter()
            .filter_map(|(m, p)| p.as_deref().map(|p| MessageJson::new(m, p)))
            .collect();
        ThreadJson::with_messages(t, messages)
    })
}

async fn messages(
    State(state): State<Arc<AppState>>,
    Extension(origin): Extension<Origin>,
    method: Method,
    uri: Uri,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = match query_params(query) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let here = here(&origin, &uri);
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
    profiled(state, method, uri, list_some_body).await
}

/// The body of `GET /api/messages/list_some/`: the 100 newest live messages with
/// their senders' names (`demo bench` times it as "list_some as served").
pub fn list_some_body(conn: &mut AnyConnection) -> ApiResult {
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
}

async fn detail(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Ok(Path((kind, id))) = path else {
        return ApiError::bad_request("The path is not valid UTF-8.").into_response();
    };
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
            _ => Err(ApiError::not_found("Not found.").into()),
        }
    })
    .await
}

async fn profile_list(
    State(state): State<Arc<AppState>>,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = match query_params(query) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let page = match raw_page(&params).parse::<usize>() {
        Ok(page) if page >= 1 => page,
        _ => return ApiError::not_found("Invalid page.").into_response(),
    };
    let (rows, kept) = state.summaries(page - 1);
    Html(profile_pages::list(&rows, page, kept)).into_response()
}

async fn profile_detail(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some(request) = id.parse::<u64>().ok().and_then(|id| state.profile(id)) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>No such request</h1>".to_owned()),
        )
            .into_response();
    };
    // Plans are collected now, outside the request's own time, one per statement
    // shape, on a worker of the pool (the stored profile is shared: on a copy).
    let rendered = state
        .db
        .run(move |conn| {
            let mut request = RequestProfile::clone(&request);
            request.profile.collect_plans(conn);
            Ok(profile_pages::detail(&request))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn driver_error() -> diesel::result::Error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("the driver's own words".to_owned()),
        )
    }

    #[test]
    fn library_errors_map_to_short_statuses_by_kind() {
        let timeout = std::time::Duration::from_millis(50);
        let cases = [
            (
                orm::Error::StatementTimeout {
                    timeout,
                    source: driver_error(),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                orm::Error::Busy {
                    timeout,
                    source: driver_error(),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                orm::Error::NulInText {
                    source: driver_error(),
                },
                StatusCode::BAD_REQUEST,
            ),
            (
                orm::Error::Query(driver_error()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                orm::Error::NotFound { model: "Message" },
                StatusCode::NOT_FOUND,
            ),
            (
                orm::Error::Connect {
                    backend: orm::Backend::Postgres,
                    kind: orm::ConnectErrorKind::Refused,
                    source: diesel::ConnectionError::BadConnection("the driver's own words".into()),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (error, status) in cases {
            let quiet = ApiError::from_orm(&error, false);
            assert_eq!(quiet.status, status, "{error}");
            assert!(!quiet.detail.contains("driver"), "{}", quiet.detail);
            let loud = ApiError::from_orm(&error, true);
            if status != StatusCode::NOT_FOUND {
                assert_eq!(loud.detail, error.to_string());
            }
        }
    }

    #[test]
    fn hosts_are_matched_as_django_matches_them() {
        let allowed = vec![
            "localhost".to_owned(),
            ".example.org".to_owned(),
            "[::1]".to_owned(),
        ];
        for ok in [
            "localhost",
            "LOCALHOST:8000",
            "example.org",
            "api.example.org:443",
            "[::1]:8000",
        ] {
            assert!(allowed_host(ok, &allowed).is_ok(), "{ok}");
        }
        for refused in [
            "evil.example",
            "example.org.evil",
            "localhost:port",
            "bad_name",
            "[::1",
            "",
        ] {
            assert!(allowed_host(refused, &allowed).is_err(), "{refused}");
        }
        assert!(allowed_host("anything.at.all", &["*".to_owned()]).is_ok());
    }
}
