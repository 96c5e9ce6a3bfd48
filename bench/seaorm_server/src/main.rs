//! The demo's two loaded routes, `GET /api/messages/list_some/` and
//! `GET /api/threads/` (page 1), served by axum and SeaORM (async, sqlx) from the same
//! PostgreSQL rows, in the same bytes as the demo's API, for `bench/http_load.sh`.
//!
//!     seaorm-server --database-url postgres://... --port 8766

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{NaiveDateTime, Timelike};
use sea_orm::{
    ColumnTrait, ConnectOptions, Database, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;

mod person {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "weave_person")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub created: DateTimeUtc,
        pub updated: DateTimeUtc,
        pub deleted: bool,
        pub first_name: String,
        pub last_name: String,
        pub email_address: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod thread {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "weave_thread")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub created: DateTimeUtc,
        pub updated: DateTimeUtc,
        pub deleted: bool,
        pub title: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "weave_message")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub created: DateTimeUtc,
        pub updated: DateTimeUtc,
        pub deleted: bool,
        pub text: String,
        pub sent_by_id: i64,
        pub thread_id: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// DRF's `DateTimeField` text of a UTC time.
fn drf(t: chrono::DateTime<chrono::Utc>) -> String {
    let t: NaiveDateTime = t.naive_utc();
    if t.nanosecond() / 1_000 == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

#[derive(Serialize)]
struct SenderText<'a> {
    sender: String,
    text: &'a str,
}

#[derive(Serialize)]
struct MessageJson<'a> {
    id: i64,
    sender: String,
    created: String,
    updated: String,
    deleted: bool,
    text: &'a str,
    sent_by: i64,
    thread: i64,
}

#[derive(Serialize)]
struct ThreadJson<'a> {
    id: i64,
    messages: Vec<MessageJson<'a>>,
    created: String,
    updated: String,
    deleted: bool,
    title: &'a str,
}

#[derive(Serialize)]
struct PageJson<'a> {
    count: u64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<ThreadJson<'a>>,
}

fn full_name(p: &person::Model) -> String {
    format!("{} {}", p.first_name, p.last_name)
}

fn json(body: Result<Vec<u8>, String>) -> Response {
    match body {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn senders(
    db: &DatabaseConnection,
    ids: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, person::Model>, sea_orm::DbErr> {
    let mut ids: Vec<i64> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(person::Entity::find()
        .filter(person::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect())
}

async fn list_some(State(db): State<DatabaseConnection>) -> Response {
    let body = async {
        let messages = message::Entity::find()
            .filter(message::Column::Deleted.eq(false))
            .order_by_desc(message::Column::Updated)
            .order_by_desc(message::Column::Id)
            .limit(100)
            .all(&db)
            .await?;
        let persons = senders(&db, messages.iter().map(|m| m.sent_by_id)).await?;
        let out: Vec<SenderText<'_>> = messages
            .iter()
            .filter_map(|m| {
                persons.get(&m.sent_by_id).map(|p| SenderText {
                    sender: full_name(p),
                    text: &m.text,
                })
            })
            .collect();
        Ok::<_, sea_orm::DbErr>(serde_json::to_vec(&out).unwrap_or_default())
    }
    .await
    .map_err(|e| e.to_string());
    json(body)
}

async fn threads(State(db): State<DatabaseConnection>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let body = async {
        let live = || thread::Entity::find().filter(thread::Column::Deleted.eq(false));
        let page = live()
            .order_by_desc(thread::Column::Updated)
            .order_by_desc(thread::Column::Id)
            .limit(101)
            .all(&db)
            .await?;
        let page = &page[..page.len().min(100)];
        let count = live().count(&db).await?;
        let ids: Vec<i64> = page.iter().map(|t| t.id).collect();
        let messages = message::Entity::find()
            .filter(message::Column::Deleted.eq(false))
            .filter(message::Column::ThreadId.is_in(ids))
            .order_by_desc(message::Column::Updated)
            .order_by_desc(message::Column::Id)
            .all(&db)
            .await?;
        let persons = senders(&db, messages.iter().map(|m| m.sent_by_id)).await?;
        let mut by_thread: HashMap<i64, Vec<MessageJson<'_>>> = HashMap::new();
        for m in &messages {
            if let Some(p) = persons.get(&m.sent_by_id) {
                by_thread.entry(m.thread_id).or_default().push(MessageJson {
                    id: m.id,
                    sender: full_name(p),
                    created: drf(m.created),
                    updated: drf(m.updated),
                    deleted: m.deleted,
                    text: &m.text,
                    sent_by: m.sent_by_id,
                    thread: m.thread_id,
                });
            }
        }
        let results = page
            .iter()
            .map(|t| ThreadJson {
                id: t.id,
                messages: by_thread.remove(&t.id).unwrap_or_default(),
                created: drf(t.created),
                updated: drf(t.updated),
                deleted: t.deleted,
                title: &t.title,
            })
            .collect();
        let body = PageJson {
            count,
            next: (count > 100).then(|| format!("http://{host}/api/threads/?page=2")),
            previous: None,
            results,
        };
        Ok::<_, sea_orm::DbErr>(serde_json::to_vec(&body).unwrap_or_default())
    }
    .await
    .map_err(|e| e.to_string());
    json(body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut url, mut port) = (String::new(), 8766u16);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--database-url" => url = args.next().unwrap_or_default(),
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(port),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(10)
        .min_connections(10)
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    let app = Router::new()
        .route("/api/messages/list_some/", get(list_some))
        .route("/api/threads/", get(threads))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
