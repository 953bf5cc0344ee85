//! Rendering with a fixed clock and a counting random source.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use time::OffsetDateTime;
use windlass_template::{Entropy, ItemValue, RenderError, Scope, TemplateContext, Usage, render};

/// 2026-03-04T05:06:07Z, and bytes 0, 1, 2, ... (wrapping).
pub struct FixedEntropy {
    next: AtomicU8,
}

impl FixedEntropy {
    pub fn new() -> Arc<FixedEntropy> {
        Arc::new(FixedEntropy {
            next: AtomicU8::new(0),
        })
    }
}

impl Entropy for FixedEntropy {
    fn now(&self) -> OffsetDateTime {
        time::macros::datetime!(2026-03-04 05:06:07.123456789 UTC)
    }

    fn fill(&self, bytes: &mut [u8]) -> Result<(), String> {
        for byte in bytes {
            *byte = self.next.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A text item.
pub fn text(value: &str, default: &str) -> ItemValue {
    ItemValue {
        item_type: "text".into(),
        value: value.into(),
        default: default.into(),
        filename: String::new(),
        derived_from_password: false,
    }
}

/// A context with the given config items and a license with a few fields.
pub fn context(items: &[(&str, ItemValue)]) -> TemplateContext {
    let mut license = BTreeMap::new();
    license.insert("appSlug".to_string(), "acme".to_string());
    license.insert("customerName".to_string(), "Ada".to_string());
    license.insert("seats".to_string(), "25".to_string());
    license.insert("isSnapshotSupported".to_string(), "true".to_string());
    TemplateContext {
        config: Arc::new(
            items
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone()))
                .collect(),
        ),
        license: Some(Arc::new(license)),
        app_slug: Some("acme".into()),
        namespace: "shop".into(),
        proxy_domain: "proxy.example.test".into(),
        registry_domain: "registry.example.test".into(),
        local_registry: None,
    }
}

/// Renders `text` as file `f.yaml` in `context`; the usage is returned too.
pub fn render_in(
    context: &TemplateContext,
    source: &str,
) -> (Result<String, RenderError>, Arc<Usage>) {
    let usage = Arc::new(Usage::default());
    let scope = Scope {
        context: Arc::new(context.clone()),
        entropy: FixedEntropy::new(),
        usage: usage.clone(),
    };
    let rendered = render("f.yaml", source, &scope).map(|rendered| rendered.text);
    (rendered, usage)
}

/// Renders `text` in the default test context.
pub fn rendered(source: &str) -> Result<String, RenderError> {
    render_in(
        &context(&[
            ("hostname", text_item("shop.example.test")),
            ("flag_off", bool_item("0")),
            ("flag_on", bool_item("1")),
            ("port", text_item("8888")),
            ("empty_with_default", text("", "fallback")),
            ("password", password_item("s3cret")),
            ("certificate", file_item("LS0tLS1CRUdJTg==", "tls.crt")),
        ]),
        source,
    )
    .0
}

fn text_item(value: &str) -> ItemValue {
    text(value, "")
}

fn bool_item(value: &str) -> ItemValue {
    ItemValue {
        item_type: "bool".into(),
        ..text(value, "")
    }
}

fn password_item(value: &str) -> ItemValue {
    ItemValue {
        item_type: "password".into(),
        ..text(value, "")
    }
}

fn file_item(value: &str, filename: &str) -> ItemValue {
    ItemValue {
        item_type: "file".into(),
        filename: filename.into(),
        ..text(value, "")
    }
}
