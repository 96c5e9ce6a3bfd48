//! The API's OpenAPI 3.0 document, served at `GET /api/schema/` (where
//! drf-spectacular serves Django's): every route, its query parameters, and the shape
//! of every answer, so that API tools can check the server against it. The
//! property-based test in `tests/tests/demo_openapi.rs` drives every route from it.

use serde_json::{json, Value};

/// A model's filter fields and their types, as the API reads them.
const PERSON: &[(&str, &str)] = &[
    ("id", "integer"),
    ("created", "date-time"),
    ("updated", "date-time"),
    ("deleted", "boolean"),
    ("first_name", "string"),
    ("last_name", "string"),
    ("email_address", "string"),
];
const THREAD: &[(&str, &str)] = &[
    ("id", "integer"),
    ("created", "date-time"),
    ("updated", "date-time"),
    ("deleted", "boolean"),
    ("title", "string"),
];
const MESSAGE: &[(&str, &str)] = &[
    ("id", "integer"),
    ("created", "date-time"),
    ("updated", "date-time"),
    ("deleted", "boolean"),
    ("text", "string"),
    ("sent_by", "integer"),
    ("thread", "integer"),
];

fn schema_of(kind: &str) -> Value {
    match kind {
        "integer" => json!({ "type": "integer" }),
        "boolean" => json!({ "type": "boolean" }),
        "date-time" => json!({ "type": "string", "format": "date-time" }),
        _ => json!({ "type": "string" }),
    }
}

/// `?page=` and a query parameter per filter field.
fn list_parameters(fields: &[(&str, &str)]) -> Value {
    let mut parameters = vec![json!({
        "name": "page",
        "in": "query",
        "required": false,
        "description": "A page number, or `last`; empty or missing is page 1.",
        "schema": { "type": "string" },
    })];
    for (name, kind) in fields {
        parameters.push(json!({
            "name": name,
            "in": "query",
            "required": false,
            "description": if *name == "deleted" {
                "Soft-deleted rows are hidden unless this filter is given."
            } else {
                "Equal to this value; repeated, the last value counts."
            },
            "schema": schema_of(kind),
        }));
    }
    Value::Array(parameters)
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    })
}

fn ok(schema: Value) -> Value {
    json!({
        "description": "OK",
        "content": { "application/json": { "schema": schema } },
    })
}

/// The answers every route may give besides its 200.
fn errors(responses: &mut serde_json::Map<String, Value>, not_found: &str) {
    responses.insert("400".into(), error("A bad filter value, an unknown field, a host not allowed, or a value the database cannot take."));
    responses.insert("404".into(), error(not_found));
    responses.insert(
        "405".into(),
        error("A method other than GET, HEAD or OPTIONS."),
    );
    responses.insert(
        "503".into(),
        error("The database is unreachable, busy or too slow."),
    );
}

fn list(summary: &str, fields: &[(&str, &str)], page: &str) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(
        "200".into(),
        ok(json!({ "$ref": format!("#/components/schemas/{page}") })),
    );
    errors(
        &mut responses,
        "A page that does not exist (`Invalid page.`).",
    );
    json!({ "get": { "summary": summary, "parameters": list_parameters(fields), "responses": responses } })
}

fn object(properties: &[(&str, Value)]) -> Value {
    let mut props = serde_json::Map::new();
    for (name, schema) in properties {
        props.insert((*name).to_owned(), schema.clone());
    }
    let required: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    json!({ "type": "object", "required": required, "properties": props })
}

fn page_of(item: &str) -> Value {
    object(&[
        ("count", json!({ "type": "integer" })),
        ("next", json!({ "type": "string", "nullable": true })),
        ("previous", json!({ "type": "string", "nullable": true })),
        (
            "results",
            json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } }),
        ),
    ])
}

/// The document.
pub fn document() -> Value {
    let date = || schema_of("date-time");
    let person = object(&[
        ("id", json!({ "type": "integer" })),
        ("created", date()),
        ("updated", date()),
        ("deleted", json!({ "type": "boolean" })),
        ("first_name", json!({ "type": "string" })),
        ("last_name", json!({ "type": "string" })),
        ("email_address", json!({ "type": "string" })),
    ]);
    let message = object(&[
        ("id", json!({ "type": "integer" })),
        ("sender", json!({ "type": "string" })),
        ("created", date()),
        ("updated", date()),
        ("deleted", json!({ "type": "boolean" })),
        ("text", json!({ "type": "string" })),
        ("sent_by", json!({ "type": "integer" })),
        ("thread", json!({ "type": "integer" })),
    ]);
    let thread = object(&[
        ("id", json!({ "type": "integer" })),
        (
            "messages",
            json!({ "type": "array", "items": { "$ref": "#/components/schemas/Message" } }),
        ),
        ("created", date()),
        ("updated", date()),
        ("deleted", json!({ "type": "boolean" })),
        ("title", json!({ "type": "string" })),
    ]);
    let sender_text = object(&[
        ("sender", json!({ "type": "string" })),
        ("text", json!({ "type": "string" })),
    ]);
    let mut list_some_responses = serde_json::Map::new();
    list_some_responses.insert(
        "200".into(),
        ok(json!({ "type": "array", "items": { "$ref": "#/components/schemas/SenderText" } })),
    );
    errors(&mut list_some_responses, "Not found.");
    let mut detail_responses = serde_json::Map::new();
    detail_responses.insert(
        "200".into(),
        ok(json!({ "oneOf": [
            { "$ref": "#/components/schemas/Person" },
            { "$ref": "#/components/schemas/Thread" },
            { "$ref": "#/components/schemas/Message" },
        ] })),
    );
    errors(
        &mut detail_responses,
        "No such object, or a soft-deleted one (`Not found.`).",
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "threads",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The talk's threads app on orm, in Django REST framework's shapes.",
        },
        "paths": {
            "/api/persons/": list("Persons, 100 a page", PERSON, "PersonPage"),
            "/api/threads/": list("Threads with their messages and senders, 100 a page", THREAD, "ThreadPage"),
            "/api/messages/": list("Messages with their senders, 100 a page", MESSAGE, "MessagePage"),
            "/api/messages/list_some/": { "get": { "summary": "The 100 newest messages", "responses": list_some_responses } },
            "/api/{kind}/{id}/": { "get": {
                "summary": "One person, thread or message",
                "parameters": [
                    { "name": "kind", "in": "path", "required": true, "schema": { "type": "string", "enum": ["persons", "threads", "messages"] } },
                    { "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } },
                ],
                "responses": detail_responses,
            } },
        },
        "components": { "schemas": {
            "Person": person,
            "Thread": thread,
            "Message": message,
            "SenderText": sender_text,
            "PersonPage": page_of("Person"),
            "ThreadPage": page_of("Thread"),
            "MessagePage": page_of("Message"),
            "Error": object(&[("detail", json!({ "type": "string" }))]),
        } },
    })
}
