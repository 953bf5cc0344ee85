//! KOTS's own template functions (`kots pkg/template`): the static context (strings, numbers,
//! time and randomness, the cluster answers KOTS gives without a cluster), the config context
//! (`ConfigOption` and friends, the registry functions), the license context and the version and
//! kURL contexts. Functions that would put a credential into a manifest windlass stores
//! (`LicenseDockerCfg`, `LicenseFieldValue "licenseID"`) or that need what windlass does not have
//! (TLS key pairs, sealed secrets) fail by name, saying why.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gotmpl::{FuncMap, TemplateError, Value};

use super::args::{
    GoParseError, count, failure, go_parse_int, go_parse_uint, int, parse_go_bool, string,
    string_value, uint,
};
use super::with_scope;

/// KOTS functions windlass refuses, with the reason.
pub const REFUSED: &[(&str, &str)] = &[
    (
        "LicenseDockerCfg",
        "it puts the license ID into a manifest; windlass writes the pull secret itself (see provision_secrets)",
    ),
    (
        "TLSCert",
        "windlass does not generate TLS key pairs in templates",
    ),
    (
        "TLSKey",
        "windlass does not generate TLS key pairs in templates",
    ),
    (
        "TLSCACert",
        "windlass does not generate TLS key pairs in templates",
    ),
    (
        "TLSCertFromCA",
        "windlass does not generate TLS key pairs in templates",
    ),
    (
        "TLSKeyFromCA",
        "windlass does not generate TLS key pairs in templates",
    ),
    ("KubeSeal", "windlass does not seal secrets"),
    ("YamlEscape", "not implemented yet"),
    (
        "KotsVersion",
        "windlass is not KOTS and has no KOTS version",
    ),
    (
        "IdentityServiceEnabled",
        "the identity service is not supported",
    ),
    (
        "IdentityServiceClientID",
        "the identity service is not supported",
    ),
    (
        "IdentityServiceClientSecret",
        "the identity service is not supported",
    ),
    (
        "IdentityServiceRoles",
        "the identity service is not supported",
    ),
    (
        "IdentityServiceName",
        "the identity service is not supported",
    ),
    (
        "IdentityServicePort",
        "the identity service is not supported",
    ),
    (
        "ConfigOptionIndex",
        "repeatable config items are not supported",
    ),
];

fn insert(
    map: &mut FuncMap,
    name: &str,
    function: impl Fn(&[Value]) -> Result<Value, TemplateError> + Send + Sync + 'static,
) {
    map.insert(name.to_string(), Arc::new(function));
}

/// Adds KOTS's functions to `map`; they read the render's [`super::Scope`].
pub fn add(map: &mut FuncMap) {
    add_static(map);
    add_config(map);
    add_license(map);
    for (name, why) in REFUSED {
        let message = format!("{name} is not supported by windlass: {why}");
        insert(map, name, move |_| {
            Err(TemplateError::Exec(message.clone()))
        });
    }
}

fn add_static(map: &mut FuncMap) {
    insert(map, "Now", move |args| {
        count("Now", args, 0, 0)?;
        let now = with_scope(|scope| scope.entropy.now())?;
        Ok(string_value(format_rfc3339(now)))
    });
    insert(map, "NowFmt", move |args| {
        count("NowFmt", args, 1, 1)?;
        let layout = string("NowFmt", args, 0)?;
        let now = with_scope(|scope| scope.entropy.now())?;
        Ok(string_value(if layout.is_empty() {
            format_rfc3339(now)
        } else {
            super::go_time::format(now, layout)
        }))
    });
    insert(map, "ToLower", |args| {
        count("ToLower", args, 1, 1)?;
        Ok(string_value(string("ToLower", args, 0)?.to_lowercase()))
    });
    insert(map, "ToUpper", |args| {
        count("ToUpper", args, 1, 1)?;
        Ok(string_value(string("ToUpper", args, 0)?.to_uppercase()))
    });
    insert(map, "TrimSpace", |args| {
        count("TrimSpace", args, 1, 1)?;
        Ok(string_value(string("TrimSpace", args, 0)?.trim()))
    });
    insert(map, "Trim", |args| {
        count("Trim", args, 1, 2)?;
        let text = string("Trim", args, 0)?;
        if args.len() == 1 {
            return Ok(string_value(text.trim()));
        }
        let cutset: Vec<char> = string("Trim", args, 1)?.chars().collect();
        Ok(string_value(text.trim_matches(cutset.as_slice())))
    });
    insert(map, "UrlEncode", |args| {
        count("UrlEncode", args, 1, 1)?;
        Ok(string_value(query_escape(string("UrlEncode", args, 0)?)))
    });
    insert(map, "Base64Encode", |args| {
        count("Base64Encode", args, 1, 1)?;
        Ok(string_value(STANDARD.encode(string(
            "Base64Encode",
            args,
            0,
        )?)))
    });
    insert(map, "Base64Decode", |args| {
        count("Base64Decode", args, 1, 1)?;
        let decoded = super::go_base64::decode(string("Base64Decode", args, 0)?)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        Ok(string_value(decoded))
    });
    insert(map, "Split", |args| {
        count("Split", args, 2, 2)?;
        let text = string("Split", args, 0)?;
        let separator = string("Split", args, 1)?;
        let parts: Vec<Value> = if separator.is_empty() {
            text.chars().map(|c| string_value(c.to_string())).collect()
        } else {
            text.split(separator).map(string_value).collect()
        };
        Ok(Value::List(parts.into()))
    });
    insert(map, "RandomString", move |args| {
        count("RandomString", args, 1, 2)?;
        let length = uint("RandomString", args, 0)?;
        let charset = if args.len() == 2 {
            string("RandomString", args, 1)?.to_string()
        } else {
            "[_A-Za-z0-9]".to_string()
        };
        let Some(characters) = character_class(&charset) else {
            return Ok(string_value(""));
        };
        if length > 1_000_000 {
            return Err(failure("RandomString", "length over 1000000"));
        }
        let picked =
            with_scope(|scope| super::random::pick(&*scope.entropy, &characters, length as usize))?
                .map_err(|error| failure("RandomString", error))?;
        Ok(string_value(picked))
    });
    insert(map, "RandomBytes", move |args| {
        count("RandomBytes", args, 1, 1)?;
        let length = uint("RandomBytes", args, 0)?;
        if length > 1_000_000 {
            return Err(failure("RandomBytes", "length over 1000000"));
        }
        let mut bytes = vec![0; length as usize];
        with_scope(|scope| scope.entropy.fill(&mut bytes))?
            .map_err(|error| failure("RandomBytes", error))?;
        Ok(string_value(STANDARD.encode(bytes)))
    });
    insert(map, "Add", |args| arithmetic("Add", args, Operation::Add));
    insert(map, "Sub", |args| arithmetic("Sub", args, Operation::Sub));
    insert(map, "Mult", |args| {
        arithmetic("Mult", args, Operation::Mult)
    });
    insert(map, "Div", |args| arithmetic("Div", args, Operation::Div));
    insert(map, "ParseBool", |args| {
        count("ParseBool", args, 1, 1)?;
        Ok(Value::Bool(
            parse_go_bool(string("ParseBool", args, 0)?).unwrap_or(false),
        ))
    });
    insert(map, "ParseFloat", |args| {
        count("ParseFloat", args, 1, 1)?;
        Ok(Value::Float(
            string("ParseFloat", args, 0)?.parse().unwrap_or(0.0),
        ))
    });
    insert(map, "ParseInt", |args| {
        count("ParseInt", args, 1, 2)?;
        let text = string("ParseInt", args, 0)?;
        let base = if args.len() == 2 {
            int("ParseInt", args, 1)?
        } else {
            10
        };
        // KOTS prints what strconv returns beside an error: 0, or the bound a number passed.
        Ok(Value::Int(
            go_parse_int(text, base).unwrap_or_else(GoParseError::value),
        ))
    });
    insert(map, "ParseUint", |args| {
        count("ParseUint", args, 1, 2)?;
        let text = string("ParseUint", args, 0)?;
        let base = if args.len() == 2 {
            int("ParseUint", args, 1)?
        } else {
            10
        };
        Ok(Value::Uint(
            go_parse_uint(text, base).unwrap_or_else(GoParseError::value),
        ))
    });
    insert(map, "HumanSize", |args| {
        count("HumanSize", args, 1, 1)?;
        Ok(string_value(human_size(super::args::to_float64(&args[0]))))
    });
    insert(map, "Namespace", move |args| {
        count("Namespace", args, 0, 0)?;
        with_scope(|scope| string_value(scope.context.namespace.as_str()))
    });
    // No cluster: KOTS's answers without one.
    insert(map, "IsKurl", |_| Ok(Value::Bool(false)));
    insert(map, "Distribution", |_| Ok(string_value("")));
    insert(map, "NodeCount", |_| Ok(Value::Int(0)));
    insert(map, "KubernetesVersion", |_| {
        Ok(string_value("0.0.0+unknown"))
    });
    insert(map, "KubernetesMajorVersion", |_| Ok(string_value("")));
    insert(map, "KubernetesMinorVersion", |_| Ok(string_value("")));
    insert(map, "Lookup", |args| {
        count("Lookup", args, 4, 4)?;
        Ok(Value::Map(Arc::new(BTreeMap::new())))
    });
    // kotsadm's environment: windlass has none.
    for name in ["HTTPProxy", "HTTPSProxy", "NoProxy", "PrivateCACert"] {
        insert(map, name, |_| Ok(string_value("")));
    }
    // The version context: a first install.
    insert(map, "Sequence", |_| Ok(Value::Int(0)));
    for name in ["Cursor", "VersionLabel", "ReleaseNotes"] {
        insert(map, name, |_| Ok(string_value("")));
    }
    insert(map, "IsRequired", |_| Ok(Value::Bool(false)));
    insert(map, "IsAirgap", |_| Ok(Value::Bool(false)));
    insert(map, "ReplicatedProxyDomain", move |_| {
        with_scope(|scope| string_value(scope.context.proxy_domain.as_str()))
    });
    insert(map, "ReplicatedRegistryDomain", move |_| {
        with_scope(|scope| string_value(scope.context.registry_domain.as_str()))
    });
    insert(map, "ChannelName", move |_| {
        with_scope(|scope| {
            string_value(
                scope
                    .context
                    .license
                    .as_ref()
                    .and_then(|fields| fields.get("channelName").cloned())
                    .unwrap_or_default(),
            )
        })
    });
    // kURL: zero values off kURL.
    insert(map, "KurlString", |_| Ok(string_value("")));
    insert(map, "KurlOption", |_| Ok(string_value("")));
    insert(map, "KurlInt", |_| Ok(Value::Int(0)));
    insert(map, "KurlBool", |_| Ok(Value::Bool(false)));
    insert(map, "KurlAll", |_| {
        Ok(Value::Map(Arc::new(BTreeMap::new())))
    });
}

fn add_config(map: &mut FuncMap) {
    let lookup = |name: &str| -> Result<Option<crate::context::ItemValue>, TemplateError> {
        with_scope(|scope| {
            let item = scope.context.config.get(name);
            scope.usage.read_item(name, item);
            item.cloned()
        })
    };
    insert(map, "ConfigOption", move |args| {
        count("ConfigOption", args, 1, 1)?;
        let item = lookup(string("ConfigOption", args, 0)?)?;
        Ok(string_value(
            item.map(|item| item.effective().to_string())
                .unwrap_or_default(),
        ))
    });
    insert(map, "ConfigOptionEquals", move |args| {
        count("ConfigOptionEquals", args, 2, 2)?;
        let item = lookup(string("ConfigOptionEquals", args, 0)?)?;
        let expected = string("ConfigOptionEquals", args, 1)?;
        Ok(Value::Bool(
            item.is_some_and(|item| item.effective() == expected),
        ))
    });
    insert(map, "ConfigOptionNotEquals", move |args| {
        count("ConfigOptionNotEquals", args, 2, 2)?;
        let item = lookup(string("ConfigOptionNotEquals", args, 0)?)?;
        let expected = string("ConfigOptionNotEquals", args, 1)?;
        // An unknown item is false here too, as in KOTS.
        Ok(Value::Bool(
            item.is_some_and(|item| item.effective() != expected),
        ))
    });
    insert(map, "ConfigOptionData", move |args| {
        count("ConfigOptionData", args, 1, 1)?;
        let item = lookup(string("ConfigOptionData", args, 0)?)?;
        let decoded = item
            .and_then(|item| super::go_base64::decode(item.effective()).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        Ok(string_value(decoded))
    });
    insert(map, "ConfigOptionFilename", move |args| {
        count("ConfigOptionFilename", args, 1, 1)?;
        let item = lookup(string("ConfigOptionFilename", args, 0)?)?;
        Ok(string_value(
            item.map(|item| item.filename).unwrap_or_default(),
        ))
    });
    insert(map, "ConfigOptionName", |args| {
        count("ConfigOptionName", args, 1, 1)?;
        Ok(string_value(string("ConfigOptionName", args, 0)?))
    });
    let local = |read: fn(&crate::context::LocalRegistry) -> Value| {
        move |_: &[Value]| {
            with_scope(|scope| read(&scope.context.local_registry.clone().unwrap_or_default()))
        }
    };
    insert(
        map,
        "HasLocalRegistry",
        local(|registry| Value::Bool(!registry.host.is_empty())),
    );
    insert(
        map,
        "LocalRegistryHost",
        local(|registry| string_value(registry.host.as_str())),
    );
    insert(
        map,
        "LocalRegistryNamespace",
        local(|registry| string_value(registry.namespace.as_str())),
    );
    insert(
        map,
        "LocalRegistryAddress",
        local(|registry| {
            string_value(if registry.namespace.is_empty() {
                registry.host.clone()
            } else {
                format!("{}/{}", registry.host, registry.namespace)
            })
        }),
    );
    insert(map, "LocalImageName", move |args| {
        count("LocalImageName", args, 1, 1)?;
        let image = string("LocalImageName", args, 0)?.to_string();
        let registry = with_scope(|scope| scope.context.local_registry.clone())?;
        match registry.filter(|registry| !registry.host.is_empty()) {
            Some(registry) => Ok(string_value(local_image_name(&image, &registry))),
            None => Err(TemplateError::Exec(
                "LocalImageName is not supported by windlass without a local registry (--registry-host): it would need a registry probe at render time".into(),
            )),
        }
    });
    insert(map, "LocalRegistryImagePullSecret", move |_| {
        let registry = with_scope(|scope| {
            let registry = scope.context.local_registry.clone();
            if registry
                .as_ref()
                .is_some_and(|registry| !registry.host.is_empty())
            {
                scope.usage.read_credential("LocalRegistryImagePullSecret");
            }
            registry
        })?;
        match registry.filter(|registry| !registry.host.is_empty()) {
            Some(registry) => Ok(string_value(STANDARD.encode(&registry.docker_config.0))),
            None => Err(TemplateError::Exec(
                "LocalRegistryImagePullSecret is not supported by windlass without a local registry (--registry-host): it would put the license ID into a manifest; windlass writes the pull secret itself (see provision_secrets)".into(),
            )),
        }
    });
    insert(map, "ImagePullSecretName", move |_| {
        with_scope(|scope| {
            string_value(
                scope
                    .context
                    .app_slug
                    .as_ref()
                    .map(|slug| format!("{slug}-registry"))
                    .unwrap_or_default(),
            )
        })
    });
}

/// KOTS's `DestImage` for a local registry: the image parsed as Docker does (no tag: `latest`;
/// a tag and a digest: the digest alone), renamed to `<host>/<namespace>/<last path component>`.
pub fn local_image_name(image: &str, registry: &crate::context::LocalRegistry) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |index| index + 1);
    let (name, tag) = match name[last_slash..].find(':') {
        Some(colon) => (
            &name[..last_slash + colon],
            Some(&name[last_slash + colon + 1..]),
        ),
        None => (name, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let namespace = registry.namespace.trim_matches('/');
    let mut renamed = if namespace.is_empty() {
        format!("{}/{last}", registry.host)
    } else {
        format!("{}/{namespace}/{last}", registry.host)
    };
    match (digest, tag) {
        (Some(digest), _) => {
            renamed.push('@');
            renamed.push_str(digest);
        }
        (None, Some(tag)) => {
            renamed.push(':');
            renamed.push_str(tag);
        }
        (None, None) => renamed.push_str(":latest"),
    }
    renamed
}

fn add_license(map: &mut FuncMap) {
    insert(map, "LicenseFieldValue", move |args| {
        count("LicenseFieldValue", args, 1, 1)?;
        let name = string("LicenseFieldValue", args, 0)?;
        if name == "licenseID" || name == "licenseId" {
            return Err(failure(
                "LicenseFieldValue",
                format!(
                    "{name:?} is the license ID, a credential windlass never writes into a manifest"
                ),
            ));
        }
        with_scope(|scope| {
            string_value(
                scope
                    .context
                    .license
                    .as_ref()
                    .and_then(|fields| fields.get(name).cloned())
                    .unwrap_or_default(),
            )
        })
    });
}

/// Go's `time.RFC3339` of an instant in UTC (seconds, `Z`).
pub fn format_rfc3339(now: time::OffsetDateTime) -> String {
    super::go_time::format(now, "2006-01-02T15:04:05Z07:00")
}

/// Go's `url.QueryEscape`.
fn query_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                escaped.push(byte as char)
            }
            b' ' => escaped.push('+'),
            other => escaped.push_str(&format!("%{other:02X}")),
        }
    }
    escaped
}

/// The characters of a `RandomString` charset, a regular expression that must be one character
/// class (KOTS answers `""` otherwise). windlass draws from its printable ASCII members.
fn character_class(pattern: &str) -> Option<Vec<char>> {
    let regex = regex::Regex::new(&format!("^(?:{pattern})$")).ok()?;
    let characters: Vec<char> = (0x20u8..0x7f)
        .map(char::from)
        .filter(|character| regex.is_match(&character.to_string()))
        .collect();
    (!characters.is_empty()).then_some(characters)
}

#[derive(Clone, Copy)]
enum Operation {
    Add,
    Sub,
    Mult,
    Div,
}

/// KOTS's `Add`/`Sub`/`Mult`/`Div` (`static_context.go`): float if either operand is a float
/// (a non-number counting as 0); else an integer of the first operand's kind, int64 or uint64,
/// wrapping on overflow; else (the first operand is not a number) `0`. A second operand that is
/// not a number counts as 0; one of the other integer kind makes KOTS call `reflect.Value.Int` on
/// a uint64 (or `Uint` on an int64), which panics: an error here too, with Go's message. An
/// integer division by zero is an error.
fn arithmetic(name: &str, args: &[Value], operation: Operation) -> Result<Value, TemplateError> {
    count(name, args, 2, 2)?;
    let (left, right) = (&args[0], &args[1]);
    let is_float = |value: &Value| matches!(value, Value::Float(_));
    if is_float(left) || is_float(right) {
        let as_float = |value: &Value| match value {
            Value::Float(number) => *number,
            Value::Int(number) => *number as f64,
            Value::Uint(number) => *number as f64,
            _ => 0.0,
        };
        let (a, b) = (as_float(left), as_float(right));
        return Ok(Value::Float(match operation {
            Operation::Add => a + b,
            Operation::Sub => a - b,
            Operation::Mult => a * b,
            Operation::Div => a / b,
        }));
    }
    let reflect_panic = |method: &str, kind: &str| {
        failure(
            name,
            format!("reflect: call of reflect.Value.{method} on {kind} Value"),
        )
    };
    let divide_by_zero = || failure(name, "integer divide by zero");
    match left {
        Value::Int(a) => {
            let b = match right {
                Value::Int(b) => *b,
                Value::Uint(_) => return Err(reflect_panic("Int", "uint64")),
                _ => 0,
            };
            Ok(Value::Int(match operation {
                Operation::Add => a.wrapping_add(b),
                Operation::Sub => a.wrapping_sub(b),
                Operation::Mult => a.wrapping_mul(b),
                Operation::Div if b == 0 => return Err(divide_by_zero()),
                Operation::Div => a.wrapping_div(b),
            }))
        }
        Value::Uint(a) => {
            let b = match right {
                Value::Uint(b) => *b,
                Value::Int(_) => return Err(reflect_panic("Uint", "int")),
                _ => 0,
            };
            Ok(Value::Uint(match operation {
                Operation::Add => a.wrapping_add(b),
                Operation::Sub => a.wrapping_sub(b),
                Operation::Mult => a.wrapping_mul(b),
                Operation::Div if b == 0 => return Err(divide_by_zero()),
                Operation::Div => a / b,
            }))
        }
        _ => Ok(Value::Int(0)),
    }
}

/// docker/go-units `HumanSize`: decimal units, four significant digits (`387.3GB`).
fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_g4(value), UNITS[unit])
}

/// Go's `%.4g` for values below 1000 (no exponent needed), trailing zeros dropped.
fn format_g4(value: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs().log10().floor() as i32;
    if !(-4..4).contains(&magnitude) {
        return format!("{value:e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    text
}
