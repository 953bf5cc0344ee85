//! KOTS's and sprig's functions as a data table: template in, output out (or an error that must
//! contain a phrase). Cases follow the behaviour notes, including their traps.

use crate::support::rendered;

/// (template, expected output)
const CASES: &[(&str, &str)] = &[
    // Config context
    (
        r#"host: repl{{ ConfigOption "hostname" }}"#,
        "host: shop.example.test",
    ),
    (
        r#"host: {{repl ConfigOption "hostname" }}"#,
        "host: shop.example.test",
    ),
    (r#"{{repl ConfigOption "empty_with_default" }}"#, "fallback"),
    (r#"[{{repl ConfigOption "no_such_item" }}]"#, "[]"),
    (r#"{{repl ConfigOptionEquals "flag_on" "1" }}"#, "true"),
    (r#"{{repl ConfigOptionEquals "flag_off" "1" }}"#, "false"),
    // trap: unknown items are false for both Equals and NotEquals
    (r#"{{repl ConfigOptionEquals "no_such_item" "" }}"#, "false"),
    (
        r#"{{repl ConfigOptionNotEquals "no_such_item" "x" }}"#,
        "false",
    ),
    (r#"{{repl ConfigOptionNotEquals "flag_off" "1" }}"#, "true"),
    // trap: "0" is a non-empty string, so `if` takes it as true
    (
        r#"{{repl if ConfigOption "flag_off" }}on{{repl else }}off{{repl end }}"#,
        "on",
    ),
    (
        r#"{{repl if ConfigOptionEquals "flag_off" "1" }}on{{repl else }}off{{repl end }}"#,
        "off",
    ),
    // trap: quotes around templates are kept
    (r#"port: 'repl{{ ConfigOption "port" }}'"#, "port: '8888'"),
    (r#"port: "{{repl ConfigOption "port" }}""#, "port: \"8888\""),
    (r#"{{repl ConfigOptionData "certificate" }}"#, "-----BEGIN"),
    (r#"{{repl ConfigOptionFilename "certificate" }}"#, "tls.crt"),
    (r#"{{repl ConfigOptionName "hostname" }}"#, "hostname"),
    (r#"{{repl HasLocalRegistry }}"#, "false"),
    (r#"[{{repl LocalRegistryHost }}]"#, "[]"),
    (r#"{{repl ImagePullSecretName }}"#, "acme-registry"),
    // License context
    (r#"{{repl LicenseFieldValue "customerName" }}"#, "Ada"),
    (r#"{{repl LicenseFieldValue "seats" }}"#, "25"),
    (
        r#"{{repl LicenseFieldValue "isSnapshotSupported" }}"#,
        "true",
    ),
    (r#"[{{repl LicenseFieldValue "nothing" }}]"#, "[]"),
    // Static context
    (r#"{{repl Now }}"#, "2026-03-04T05:06:07Z"),
    (r#"{{repl NowFmt "2006-01-02 15:04" }}"#, "2026-03-04 05:06"),
    (r#"{{repl NowFmt "" }}"#, "2026-03-04T05:06:07Z"),
    (
        r#"{{repl ToLower "AbC" }} {{repl ToUpper "aBc" }}"#,
        "abc ABC",
    ),
    (
        r#"[{{repl TrimSpace "  x  " }}] [{{repl Trim "xxhixx" "x" }}] [{{repl Trim " y " }}]"#,
        "[x] [hi] [y]",
    ),
    (r#"{{repl UrlEncode "a b&c/d" }}"#, "a+b%26c%2Fd"),
    (
        r#"{{repl Base64Encode "hello" }} {{repl Base64Decode "aGVsbG8=" }} [{{repl Base64Decode "!!" }}]"#,
        "aGVsbG8= hello []",
    ),
    // Go's decoder skips line breaks and ignores the unused bits of the last character
    (
        r#"[{{repl Base64Decode "aGVs\nbG8=\n" }}] [{{repl Base64Decode "aGk\r\n=" }}] [{{repl Base64Decode "YR==" }}] [{{repl Base64Decode "aGVs bG8=" }}]"#,
        "[hello] [hi] [a] []",
    ),
    (r#"{{repl Split "a,b,c" "," }}"#, "[a b c]"),
    (r#"{{repl index (Split "a,b,c" ",") 1 }}"#, "b"),
    (
        r#"{{repl Add 2 3 }} {{repl Sub 2 3 }} {{repl Mult 4 5 }} {{repl Div 7 2 }}"#,
        "5 -1 20 3",
    ),
    (r#"{{repl Add 2.5 5 }} {{repl Div 15 2.0 }}"#, "7.5 7.5"),
    (r#"{{repl Mult 1000.0 1000 }}"#, "1e+06"),
    // a first operand that is not a number gives 0; a second one counts as 0
    (
        r#"{{repl Add "3" 4 }} {{repl Sub true 1 }} {{repl Mult "x" 2.5 }} {{repl Div "9" 3 }} {{repl Add 3 "4" }} {{repl Div 2.0 "x" }}"#,
        "0 0 0 0 3 +Inf",
    ),
    // uint64 operands stay uint64, and both kinds wrap as Go's integers do
    (
        r#"{{repl Add (ParseUint "5") (ParseUint "2") }} {{repl Sub (ParseUint "1") (ParseUint "2") }} {{repl Add 9223372036854775807 1 }}"#,
        "7 18446744073709551615 -9223372036854775808",
    ),
    (
        r#"{{repl ParseFloat "1234567.5" }} {{repl ParseFloat "0.00001" }} {{repl list 1.5 "a" 3 }}"#,
        "1.2345675e+06 1e-05 [1.5 a 3]",
    ),
    (
        r#"{{repl ParseBool "true" }} {{repl ParseBool "nope" }}"#,
        "true false",
    ),
    (
        r#"{{repl ParseInt "42" }} {{repl ParseInt "ff" 16 }} {{repl ParseInt "x" }}"#,
        "42 255 0",
    ),
    (
        r#"{{repl ParseFloat "2.5" }} {{repl ParseUint "7" }}"#,
        "2.5 7",
    ),
    // ParseInt and ParseUint answer what strconv returns beside an error: 0, or the bound passed
    (
        r#"{{repl ParseUint "18446744073709551615" }} {{repl ParseUint "18446744073709551616" }} {{repl ParseUint "+5" }} {{repl ParseUint "-1" }} {{repl ParseUint "ff" 16 }} {{repl ParseUint "0x_ff" 0 }} {{repl ParseUint "1_000" 0 }} {{repl ParseUint "1_000" }} {{repl ParseUint "7" 37 }}"#,
        "18446744073709551615 18446744073709551615 0 0 255 255 1000 0 0",
    ),
    (
        r#"{{repl ParseInt "99999999999999999999" }} {{repl ParseInt "-99999999999999999999" }} {{repl ParseInt "-9223372036854775808" }} {{repl ParseInt "+0x10" 0 }} {{repl ParseInt "__1" 0 }} {{repl ParseInt "1__0" 0 }} {{repl ParseInt "0_7" 0 }}"#,
        "9223372036854775807 -9223372036854775808 -9223372036854775808 16 0 0 7",
    ),
    (
        r#"{{repl HumanSize 387300000000 }} {{repl HumanSize 1000 }} {{repl HumanSize 12 }}"#,
        "387.3GB 1kB 12B",
    ),
    (r#"{{repl Namespace }}"#, "shop"),
    (
        r#"{{repl IsKurl }} [{{repl Distribution }}] {{repl NodeCount }}"#,
        "false [] 0",
    ),
    (r#"{{repl KubernetesVersion }}"#, "0.0.0+unknown"),
    (r#"{{repl Sequence }} {{repl IsAirgap }}"#, "0 false"),
    (r#"{{repl ReplicatedProxyDomain }}"#, "proxy.example.test"),
    (r#"{{repl len (RandomString 32) }}"#, "32"),
    (r#"{{repl len (RandomString 10 "[a-c]") }}"#, "10"),
    // Go builtins and semantics
    (r#"{{repl . }}"#, "<no value>"),
    (r#"{{repl eq "a" "b" "a" }}"#, "true"),
    (r#"{{repl and "x" "" }}|{{repl or "" "y" }}"#, "|y"),
    (r#"{{repl printf "%s-%d" "a" 7 }}"#, "a-7"),
    (r#"{{repl $x := "v" }}{{repl $x }}"#, "v"),
    (
        r#"{{repl range $i, $v := Split "a b" " " }}{{repl $i }}={{repl $v }};{{repl end }}"#,
        "0=a;1=b;",
    ),
    (
        r#"{{repl define "t" }}T{{repl end }}{{repl template "t" }}"#,
        "T",
    ),
    // trim markers and comments with custom delimiters
    ("a  {{repl- \"b\" -}}  c", "abc"),
    ("a  repl{{- \"b\" -}}  c", "abc"),
    ("x{{repl/* a comment */}}y", "xy"),
    // Helm's plain braces are left alone; `{{ repl` is text
    (
        "name: {{ .Values.name }} {{ repl X }}",
        "name: {{ .Values.name }} {{ repl X }}",
    ),
    // pass 1's output is the source of pass 2
    (
        r#"{{repl print "repl{{ ConfigOption \"hostname\" }}" }}"#,
        "shop.example.test",
    ),
    // sprig
    (
        r#"a:{{repl ConfigOption "hostname" | nindent 2 }}"#,
        "a:\n  shop.example.test",
    ),
    (r#"{{repl "x\ny" | indent 2 }}"#, "  x\n  y"),
    (
        r#"{{repl quote "a\"b" 3 }} {{repl squote "a" }}"#,
        r#""a\"b" "3" 'a'"#,
    ),
    (
        r#"{{repl ternary "yes" "no" true }} {{repl ternary "yes" "no" (eq 1 2) }}"#,
        "yes no",
    ),
    (
        r#"{{repl default "d" "" }} {{repl default "d" "given" }} {{repl "" | default "p" }}"#,
        "d given p",
    ),
    (
        r#"{{repl empty "" }} {{repl empty 0 }} {{repl empty "x" }}"#,
        "true true false",
    ),
    (r#"{{repl replace "a" "b" "banana" }}"#, "bbnbnb"),
    (
        r#"{{repl upper "a" }}{{repl lower "B" }}{{repl title "hello world" }}"#,
        "AbHello World",
    ),
    // Go's strings.Title: ASCII punctuation separates words, `_` and digits do not
    (
        r#"{{repl title "hello-world foo_bar" }}|{{repl title "a.b/c:d 9lives x2y \tz" }}|{{repl title "élan ǆungla straße ᾳ" }}"#,
        "Hello-World Foo_bar|A.B/C:D 9lives X2y \tZ|Élan ǅungla Straße ᾼ",
    ),
    (
        r#"{{repl contains "an" "banana" }} {{repl hasPrefix "ba" "banana" }} {{repl hasSuffix "x" "banana" }}"#,
        "true true false",
    ),
    (
        r#"{{repl b64enc "hi" }} {{repl b64dec "aGk=" }}"#,
        "aGk= hi",
    ),
    // b64dec skips line breaks too, and prints Go's error in place of the text
    (
        r#"{{repl b64dec "aGk=\n" }} {{repl b64dec "aGVs\r\nbG8=" }}|{{repl b64dec "!!" }}|{{repl b64dec "aGVsbG8" }}|{{repl b64dec "YQ==YQ==" }}"#,
        "hi hello|illegal base64 data at input byte 0|illegal base64 data at input byte 4|illegal base64 data at input byte 4",
    ),
    (
        r#"{{repl toJson (dict "b" 1 "a" (list "x" true)) }}"#,
        r#"{"a":["x",true],"b":1}"#,
    ),
    // toJson writes numbers and strings as Go's encoding/json does
    (
        r#"{{repl toJson 1.0 }} {{repl toJson 2.5 }} {{repl toJson (list 1e21 1e20 0.000001 0.0000001 -0.00000000015 (ParseUint "42") true "x" (dict "k" 1.0)) }}"#,
        r#"1 2.5 [1e+21,100000000000000000000,0.000001,1e-7,-1.5e-10,42,true,"x",{"k":1}]"#,
    ),
    (
        r#"{{repl toJson "<a href=\"x\">&\u2028\t\b\x01\x7f\\" }}"#,
        "\"\\u003ca href=\\\"x\\\"\\u003e\\u0026\\u2028\\t\\b\\u0001\u{7f}\\\\\"",
    ),
    // Go cannot encode NaN: sprig ignores the error and prints nothing
    (r#"[{{repl toJson (list (Div 0.0 0.0)) }}]"#, "[]"),
    (
        r#"{{repl get (dict "k" "v") "k" }} {{repl hasKey (dict "k" "v") "z" }}"#,
        "v false",
    ),
    (
        r#"{{repl atoi "12" }} {{repl int "7" }} {{repl add 1 2 3 }} {{repl sub 5 2 }} {{repl mul 2 3 }} {{repl div 7 2 }} {{repl mod 7 2 }}"#,
        "12 7 6 3 6 3 1",
    ),
    // sprig's int, int64 and arithmetic read strings as cast does: a decimal fraction is cut,
    // Go's integer literals are read, nothing is trimmed
    (
        r#"{{repl int "3.0" }} {{repl int "-3.9" }} {{repl int ".5" }} {{repl int "1.2.3" }} {{repl int " 3" }} {{repl int "0x1F" }} {{repl int "010" }} {{repl int "1_000" }} {{repl int64 "7.25" }} {{repl add "1.5" "2.5" }}"#,
        "3 -3 0 0 0 31 8 1000 7 3",
    ),
    (
        r#"{{repl atoi "+12" }} {{repl atoi "3.0" }} {{repl atoi "0x10" }} {{repl atoi "99999999999999999999" }}"#,
        "12 0 0 9223372036854775807",
    ),
    (
        r#"{{repl float64 "2.5" }} {{repl float64 " 2.5" }}"#,
        "2.5 0",
    ),
    (
        r#"{{repl sha256sum "abc" }}"#,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    ),
    (r#"{{repl join "," (splitList "-" "a-b-c") }}"#, "a,b,c"),
    (
        r#"{{repl regexMatch "^[a-z]+$" "abc" }} {{repl regexReplaceAll "[0-9]" "a1b2" "X" }}"#,
        "true aXbX",
    ),
    // a pattern that does not compile matches nothing
    (
        r#"{{repl regexMatch "[" "x" }} {{repl regexMatch "(" "(" }}"#,
        "false false",
    ),
    (
        r#"{{repl trunc 3 "abcdef" }} {{repl repeat 3 "ab" }} {{repl trimPrefix "a" "abc" }} {{repl trimSuffix "c" "abc" }}"#,
        "abc ababab bc ab",
    ),
    (
        r#"{{repl trunc -2 "abcdef" }} {{repl trunc -6 "abcdef" }} {{repl trunc (ParseInt "-9223372036854775808") "abc" }} {{repl trunc 9223372036854775807 "abc" }} [{{repl trunc 0 "abc" }}]"#,
        "ef abcdef abc abc []",
    ),
    (
        r#"{{repl len (randAlphaNum 12) }} {{repl len uuidv4 }}"#,
        "12 36",
    ),
    // until and untilStep: up to the stop, never past it, by the step's direction
    (
        r#"{{repl until 5 }} {{repl until -3 }} {{repl until 0 }} {{repl range $i := until 3 }}{{repl $i }},{{repl end }}"#,
        "[0 1 2 3 4] [0 -1 -2] [] 0,1,2,",
    ),
    (
        r#"{{repl untilStep 3 10 3 }} {{repl untilStep 10 3 -3 }} {{repl untilStep 0 5 -1 }} {{repl untilStep 5 0 1 }} {{repl untilStep 2 2 1 }} {{repl untilStep 0 5 0 }}"#,
        "[3 6 9] [10 7 4] [] [] [] []",
    ),
];

#[test]
fn functions_render_as_kots_renders_them() {
    let mut failures = Vec::new();
    for (template, expected) in CASES {
        match rendered(template) {
            Ok(output) if output == *expected => {}
            Ok(output) => failures.push(format!(
                "{template}\n  want {expected:?}\n  got  {output:?}"
            )),
            Err(error) => {
                failures.push(format!("{template}\n  want {expected:?}\n  error {error}"))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// (template, phrase the error must contain)
const ERRORS: &[(&str, &str)] = &[
    (r#"{{repl Div 1 0 }}"#, "integer divide by zero"),
    // KOTS reads a uint64 second operand with reflect's Int (and the reverse), which panics
    (
        r#"{{repl Add 1 (ParseUint "5") }}"#,
        "error calling Add: reflect: call of reflect.Value.Int on uint64 Value",
    ),
    (
        r#"{{repl Mult (ParseUint "5") 2 }}"#,
        "error calling Mult: reflect: call of reflect.Value.Uint on int Value",
    ),
    (r#"{{repl eq "1" 1 }}"#, "incompatible"),
    (
        r#"{{repl genCA "x" 3 }}"#,
        "sprig function genCA is not supported by windlass",
    ),
    (
        r#"{{repl semverCompare ">1" "2" }}"#,
        "sprig function semverCompare is not supported by windlass",
    ),
    (
        r#"{{repl LicenseDockerCfg }}"#,
        "LicenseDockerCfg is not supported by windlass",
    ),
    (r#"{{repl LicenseFieldValue "licenseID" }}"#, "credential"),
    (
        r#"{{repl TLSCert "a" "b" }}"#,
        "TLSCert is not supported by windlass",
    ),
    (
        r#"{{repl until 1000001 }}"#,
        "error calling until: the list would have more than 1000000 elements",
    ),
    // Go's integers wrap: from 2^63 the steps start again at the smallest, below the stop forever
    (
        r#"{{repl untilStep 0 9223372036854775807 4611686018427387904 }}"#,
        "error calling untilStep: the list would have more than 1000000 elements",
    ),
    (r#"{{repl until "3" }}"#, "expected int"),
    // not a sprig v3.3.0 function: not defined, as in KOTS
    (
        r#"{{repl if false }}{{repl float64s }}{{repl end }}"#,
        r#"function "float64s" not defined"#,
    ),
    (
        r#"{{repl must_date_modify "1h" "x" }}"#,
        "sprig function must_date_modify is not supported by windlass",
    ),
    // regexReplaceAll compiles with MustCompile: sprig panics, text/template reports it
    (
        r#"{{repl regexReplaceAll "[" "x" "y" }}"#,
        "error calling regexReplaceAll",
    ),
    (r#"{{repl ToLower 5 }}"#, "expected string"),
    (r#"{{repl RandomString "x" }}"#, "expected uint64"),
    (
        r#"{{repl ConfigOption }}"#,
        "wrong number of args for ConfigOption",
    ),
];

#[test]
fn failing_functions_say_why() {
    let mut failures = Vec::new();
    for (template, phrase) in ERRORS {
        match rendered(template) {
            Err(error) if error.to_string().contains(phrase) => {}
            other => failures.push(format!(
                "{template}: want an error with {phrase:?}, got {other:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The items read are noted (and recorded); a name the Config does not have is not, since it may
/// be a value passed as a name — here the password itself.
#[test]
fn a_password_item_read_is_noted() {
    let context = crate::support::context(&[(
        "admin_password",
        windlass_template::ItemValue {
            item_type: "password".into(),
            value: "hunter2".into(),
            ..Default::default()
        },
    )]);
    let (output, usage) = crate::support::render_in(
        &context,
        r#"{{repl ConfigOption "admin_password" }} {{repl ConfigOptionEquals "other" "x" }} {{repl ConfigOptionEquals (ConfigOption "admin_password") "x" }}"#,
    );
    assert_eq!(output.expect("renders"), "hunter2 false false");
    assert_eq!(
        usage.config_items().into_iter().collect::<Vec<_>>(),
        ["admin_password"]
    );
    assert_eq!(
        usage.password_items().into_iter().collect::<Vec<_>>(),
        ["admin_password"]
    );
}

/// KOTS's `Test_localImageName` and the registry functions with a local registry set: the image
/// is renamed to `<host>/<namespace>/<last component>`, a missing tag becomes `latest`, a tag and
/// a digest keep the digest alone; `LocalRegistryImagePullSecret` answers the pull secret's
/// `.dockerconfigjson` and notes that the render read a credential.
#[test]
fn registry_functions_follow_a_local_registry() {
    let mut context = crate::support::context(&[]);
    context.local_registry = Some(windlass_template::LocalRegistry {
        host: "my.registry.com".into(),
        namespace: "my_namespace".into(),
        docker_config: windlass_template::Credential(
            r#"{"auths":{"my.registry.com":{"auth":"dTpw"}}}"#.into(),
        ),
    });
    for (template, expected) in [
        (r#"{{repl HasLocalRegistry }}"#, "true"),
        (r#"{{repl LocalRegistryHost }}"#, "my.registry.com"),
        (r#"{{repl LocalRegistryNamespace }}"#, "my_namespace"),
        (
            r#"{{repl LocalRegistryAddress }}"#,
            "my.registry.com/my_namespace",
        ),
        (
            r#"{{repl LocalImageName "nginx" }}"#,
            "my.registry.com/my_namespace/nginx:latest",
        ),
        (
            r#"{{repl LocalImageName "quay.io/org/team/app:1.2" }}"#,
            "my.registry.com/my_namespace/app:1.2",
        ),
        (
            r#"{{repl LocalImageName "reg:5000/team/app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }}"#,
            "my.registry.com/my_namespace/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
        (r#"{{repl ImagePullSecretName }}"#, "acme-registry"),
    ] {
        let (output, usage) = crate::support::render_in(&context, template);
        assert_eq!(output.expect("renders"), expected, "{template}");
        assert!(usage.credentials().is_empty(), "{template}");
    }
    let (output, usage) =
        crate::support::render_in(&context, r#"{{repl LocalRegistryImagePullSecret }}"#);
    assert_eq!(
        output.expect("renders"),
        "eyJhdXRocyI6eyJteS5yZWdpc3RyeS5jb20iOnsiYXV0aCI6ImRUcHcifX19"
    );
    assert_eq!(
        usage.credentials().into_iter().collect::<Vec<_>>(),
        ["LocalRegistryImagePullSecret"]
    );
    // Without a local registry both are refused by name, saying why.
    for function in ["LocalImageName \"nginx\"", "LocalRegistryImagePullSecret"] {
        let error = rendered(&format!("{{{{repl {function} }}}}")).unwrap_err();
        assert!(
            error.to_string().contains(
                "is not supported by windlass without a local registry (--registry-host)"
            ),
            "{function}: {error}"
        );
    }
}

/// Every function of sprig v3.3.0 (the version KOTS links), by the names its `genericMap` gives
/// them (`gt`, `gte`, `lt`, `lte` are commented out there; Go's builtins answer to those).
const SPRIG_FUNCTIONS: &str = "
abbrev abbrevboth add add1 add1f addf adler32sum ago all any append atoi b32dec b32enc
b64dec b64enc base bcrypt biggest buildCustomCert camelcase cat ceil chunk clean
coalesce compact concat contains date dateInZone dateModify date_in_zone date_modify
decryptAES deepCopy deepEqual default derivePassword dict dig dir div divf duration
durationRound empty encryptAES env expandenv ext fail first float64 floor fromJson genCA
genCAWithKey genPrivateKey genSelfSignedCert genSelfSignedCertWithKey genSignedCert
genSignedCertWithKey get getHostByName has hasKey hasPrefix hasSuffix hello htmlDate
htmlDateInZone htpasswd indent initial initials int int64 isAbs join kebabcase keys
kindIs kindOf last list lower max maxf merge mergeOverwrite min minf mod mul mulf
mustAppend mustChunk mustCompact mustDateModify mustDeepCopy mustFirst mustFromJson
mustHas mustInitial mustLast mustMerge mustMergeOverwrite mustPrepend mustPush
mustRegexFind mustRegexFindAll mustRegexMatch mustRegexReplaceAll
mustRegexReplaceAllLiteral mustRegexSplit mustRest mustReverse mustSlice mustToDate
mustToJson mustToPrettyJson mustToRawJson mustUniq mustWithout must_date_modify nindent
nospace now omit osBase osClean osDir osExt osIsAbs pick pluck plural prepend push quote
randAlpha randAlphaNum randAscii randBytes randInt randNumeric regexFind regexFindAll
regexMatch regexQuoteMeta regexReplaceAll regexReplaceAllLiteral regexSplit repeat
replace rest reverse round semver semverCompare seq set sha1sum sha256sum sha512sum
shuffle slice snakecase sortAlpha split splitList splitn squote sub subf substr swapcase
ternary title toDate toDecimal toJson toPrettyJson toRawJson toString toStrings trim
trimAll trimPrefix trimSuffix trimall trunc tuple typeIs typeIsLike typeOf uniq
unixEpoch unset until untilStep untitle upper urlJoin urlParse uuidv4 values without
wrap wrapWith
";

/// KOTS registers all of sprig, so a template naming any sprig function parses (a function
/// windlass does not implement fails only when called).
#[test]
fn every_sprig_function_name_parses() {
    let mut failures = Vec::new();
    for name in SPRIG_FUNCTIONS.split_whitespace() {
        let template = format!("{{{{repl if false }}}}{{{{repl {name} }}}}{{{{repl end }}}}");
        if let Err(error) = rendered(&template) {
            failures.push(format!("{name}: {error}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
