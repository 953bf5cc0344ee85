//! Reading an install's events with only part of its biggest facts decoded, for `windlass diff`:
//! a 10,000-Deployment install records tens of megabytes of JSON, most of it in facts a diff does
//! not read (`BaseFetched`'s documents, every place each image was found). A [`Skim`] says, per
//! event type, what to leave out; the rest of each payload is decoded as usual. Only events at
//! their current schema version are skimmed: older ones are decoded whole and upcast, as
//! [`EventLog::events_of`] does.

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use windlass_state::{EventLog, StoredEnvelope, StoredEvent};

use crate::ReplayError;

/// What a reader leaves out of one event type's payload.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Skim {
    /// The whole payload: it decodes as `null`.
    Payload,
    /// The values of these keys, at any depth: each decodes as an empty list.
    Emptied(&'static [&'static str]),
}

/// Every event of `install_id`, in install order, upcast, with the payloads `skim` names (by
/// event type) skimmed.
pub(crate) fn skimmed_events_of(
    log: &EventLog,
    install_id: &str,
    skim: impl Fn(&str) -> Option<Skim>,
) -> Result<Vec<StoredEvent>, ReplayError> {
    let log_error = |error: &dyn std::fmt::Display| ReplayError::Log(error.to_string());
    let records = log
        .store()
        .raw_events_of(install_id)
        .map_err(|error| log_error(&error))?;
    let mut events = Vec::with_capacity(records.len());
    for record in &records {
        let unreadable = |error: serde_json::Error| {
            ReplayError::Log(format!(
                "stored record {} is unreadable: {error}",
                record.global_seq
            ))
        };
        let envelope: StoredEnvelope = serde_json::from_slice(&record.bytes).map_err(unreadable)?;
        let current = log
            .schemas()
            .version_is_current(&envelope.event_type, envelope.schema_version);
        let payload = match skim(&envelope.event_type).filter(|_| current) {
            Some(Skim::Payload) => Value::Null,
            Some(Skim::Emptied(keys)) => {
                let mut deserializer = serde_json::Deserializer::from_str(envelope.payload.get());
                Emptying(keys)
                    .deserialize(&mut deserializer)
                    .map_err(unreadable)?
            }
            None => {
                let event: StoredEvent =
                    serde_json::from_slice(&record.bytes).map_err(unreadable)?;
                events.push(
                    log.schemas()
                        .upcast(event)
                        .map_err(|error| log_error(&error))?,
                );
                continue;
            }
        };
        events.push(envelope.with_payload(payload));
    }
    Ok(events)
}

/// Decodes a JSON value whole, except that the value of any object key among `.0` is skipped
/// and becomes an empty list.
#[derive(Clone, Copy)]
struct Emptying(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Emptying {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Emptying {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            let value = if self.0.contains(&key.as_str()) {
                entries.next_value::<IgnoredAny>()?;
                Value::Array(Vec::new())
            } else {
                entries.next_value_seed(self)?
            };
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emptied_keys_become_empty_lists_at_any_depth_and_the_rest_is_kept() {
        let text = r#"{"images":[{"image":"a:1","uses":[{"file":"x.yaml"}],"n":-2,"f":0.5}],"uses":{"k":1},"ok":true,"none":null}"#;
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = Emptying(&["uses"]).deserialize(&mut deserializer).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "images": [{"image": "a:1", "uses": [], "n": -2, "f": 0.5}],
                "uses": [],
                "ok": true,
                "none": null
            })
        );
        let mut deserializer = serde_json::Deserializer::from_str(r#"{"a":[1,"b",{"c":2}]}"#);
        assert_eq!(
            Emptying(&["uses"]).deserialize(&mut deserializer).unwrap(),
            serde_json::json!({"a": [1, "b", {"c": 2}]})
        );
    }
}
