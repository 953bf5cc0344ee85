//! Parse-time and execution rules of the two passes.

use windlass_template::RenderError;

use crate::support::rendered;

#[test]
fn an_unknown_function_fails_at_parse_time_naming_file_and_line_even_in_a_dead_branch() {
    let text = "a: 1\nb: 2\n{{repl if false }}\nc: {{repl NoSuchFunction \"x\" }}\n{{repl end }}\n";
    match rendered(text) {
        Err(RenderError::UnknownFunction { file, line, name }) => {
            assert_eq!(
                (file.as_str(), line, name.as_str()),
                ("f.yaml", 4, "NoSuchFunction")
            );
        }
        other => panic!("want an unknown-function error, got {other:?}"),
    }
    let message = rendered(text).expect_err("fails").to_string();
    assert_eq!(message, "f.yaml:4: function \"NoSuchFunction\" not defined");
}

#[test]
fn an_unknown_function_in_the_second_pass_fails_too() {
    let text = "x: repl{{ if false }}repl{{ Nope }}repl{{ end }}\n";
    assert!(matches!(
        rendered(text),
        Err(RenderError::UnknownFunction { ref name, line: 1, .. }) if name == "Nope"
    ));
}

#[test]
fn a_word_starting_with_the_delimiter_is_an_action() {
    // `{{replicas}}` is `{{repl` + `icas}}`: the whole file fails, as in KOTS.
    let error = rendered("replicas: {{replicas}}\n").expect_err("fails");
    assert_eq!(error.to_string(), "f.yaml:1: function \"icas\" not defined");
}

#[test]
fn syntax_errors_name_file_and_line() {
    let error = rendered("a: 1\nb: {{repl ConfigOption \"x\" | }}\nc: 3\n").expect_err("fails");
    match error {
        RenderError::Parse { file, line, .. } => assert_eq!((file.as_str(), line), ("f.yaml", 2)),
        other => panic!("want a parse error, got {other:?}"),
    }
}

#[test]
fn an_untemplated_text_is_returned_as_it_is() {
    let text = "kind: ConfigMap\ndata:\n  x: \"{{ .Values.x }}\"\n";
    assert_eq!(rendered(text).expect("renders"), text);
}

#[test]
fn a_whole_file_is_rendered_so_a_condition_may_span_documents() {
    let text = "a: 1\n{{repl if ConfigOptionEquals \"flag_on\" \"1\" }}---\nb: 2\n{{repl end }}";
    assert_eq!(rendered(text).expect("renders"), "a: 1\n---\nb: 2\n");
    let text = "a: 1\n{{repl if ConfigOptionEquals \"flag_off\" \"1\" }}---\nb: 2\n{{repl end }}";
    assert_eq!(rendered(text).expect("renders"), "a: 1\n");
}

#[test]
fn execution_errors_name_the_file() {
    let error = rendered("{{repl Div 1 0 }}").expect_err("fails");
    assert!(
        matches!(&error, RenderError::Execute { file, .. } if file == "f.yaml"),
        "{error}"
    );
}

#[test]
fn output_and_loops_are_bounded() {
    // 40,000 iterations of 500 bytes: 20 MB, over the 16 MiB limit.
    let text = format!(
        "{{{{repl range 40000 }}}}{}{{{{repl end }}}}",
        "x".repeat(500)
    );
    let error = rendered(&text).expect_err("too large");
    assert!(
        error
            .to_string()
            .contains("over the limit of 16777216 bytes"),
        "{error}"
    );
    let error = rendered("{{repl range 2000000 }}{{repl end }}").expect_err("too many iterations");
    assert!(
        error.to_string().contains("range iteration budget"),
        "{error}"
    );
}
