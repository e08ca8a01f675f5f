//! BuildKit's shell-lexer conformance corpus (`shared/conformance/buildkit-shell`),
//! run exactly as upstream's `TestShellParser4EnvVars` and
//! `TestShellParser4Words` do (see FORMAT.md §2).

use std::path::{Path, PathBuf};

use distill_dockerfile::shell::Lexer;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/conformance/buildkit-shell");

/// The corpus folder, or None (after a loud notice) when it is missing
/// outside CI. In CI (`CI=true`) a missing corpus fails the test.
fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(DATA);
    if dir.is_dir() {
        return Some(dir.to_path_buf());
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("conformance corpus not found at {DATA} (required when CI=true)");
    }
    eprintln!("SKIPPED: conformance corpus not found at {DATA}; the shell conformance tests did not run");
    None
}

fn read(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Go's `bufio.Scanner` lines: split on `\n`, a trailing `\r` dropped, no
/// empty last line after a final newline.
fn lines(text: &str) -> Vec<&str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect()
}

fn report(file: &str, ran: usize, failures: &[String]) {
    if !failures.is_empty() {
        panic!("{file}: {} of {ran} lines failed:\n{}", failures.len(), failures.join("\n"));
    }
}

#[test]
fn env_var_test() {
    let Some(dir) = data_dir() else { return };
    let text = read(&dir, "envVarTest");
    let env: Vec<String> = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="].map(String::from).to_vec();
    let lex = Lexer::new('\\');
    let (mut all, mut unix, mut windows) = (0, 0, 0);
    let mut failures = Vec::new();
    for (i, raw) in lines(&text).into_iter().enumerate() {
        let n = i + 1;
        if raw.starts_with('#') {
            continue;
        }
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 3, "envVarTest line {n}: expected 3 `|`-separated fields: {raw:?}");
        let (platform, source, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "A" => all += 1,
            "U" => unix += 1,
            "W" => {
                windows += 1;
                continue;
            }
            other => panic!("envVarTest line {n}: invalid platform {other:?}: must be A, U or W"),
        }
        let got = lex.process_word(source, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(_), "error") => false,
            (Ok(value), want) => value == want,
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!("  line {n}: input {source:?}: expected {expected:?}, got {got:?}"));
        }
    }
    report("envVarTest", all + unix, &failures);
    assert_eq!((all, unix, windows), (226, 2, 2), "envVarTest line counts (A, U, W)");
}

#[test]
fn words_test() {
    let Some(dir) = data_dir() else { return };
    let text = read(&dir, "wordsTest");
    let lex = Lexer::new('\\');
    let mut env: Vec<String> = Vec::new();
    let (mut tests, mut env_lines) = (0, 0);
    let mut failures = Vec::new();
    for (i, line) in lines(&text).into_iter().enumerate() {
        let n = i + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            // Upstream: TrimLeft(line[3:], " "), raw value kept with trailing spaces.
            env.push(rest.trim_start_matches(' ').to_owned());
            env_lines += 1;
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 2, "wordsTest line {n}: expected exactly one `|`: {line:?}");
        let input = fields[0].trim();
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        tests += 1;
        let got = lex.process_words(input, &env).unwrap_or_else(|_| vec!["error".to_owned()]);
        if got != expected {
            failures.push(format!("  line {n}: input {input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    report("wordsTest", tests, &failures);
    assert_eq!((tests, env_lines), (24, 4), "wordsTest line counts (tests, ENV lines)");
}
