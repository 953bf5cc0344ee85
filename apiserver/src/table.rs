//! `Table` responses (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), which `kubectl
//! get` asks for when it prints columns: NAME and AGE for every type (the real server adds
//! per-type columns), each row carrying the object's metadata as `PartialObjectMetadata`.

use serde_json::{Value, json};

use crate::catalog::ResourceType;

fn age(created: &str) -> String {
    let Ok(created) =
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
    else {
        return "<unknown>".to_owned();
    };
    let seconds = (time::OffsetDateTime::now_utc() - created)
        .whole_seconds()
        .max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The objects as a Table.
pub fn table(
    t: &ResourceType,
    objects: &[Value],
    revision: u64,
    continue_token: Option<String>,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let name = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let created = object
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("");
            let mut metadata = object.get("metadata").cloned().unwrap_or(json!({}));
            if let Some(map) = metadata.as_object_mut() {
                map.shift_remove("managedFields");
            }
            json!({
                "cells": [name, age(created)],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": metadata,
                }
            })
        })
        .collect();
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": format!("Name of the {}", t.kind), "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0}
        ],
        "rows": rows
    })
}
