//! Renders errors and findings for people: what is wrong, where (file:line),
//! and the Dockerfile lines around it, the way BuildKit shows them.

use distill_dockerfile::Error as DockerfileError;

pub fn print_error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// A Dockerfile error as `file:line:col: message` followed by the source excerpt.
pub fn dockerfile_error(file: &str, source: &str, err: &DockerfileError) -> String {
    let mut out = String::new();
    match (err.line, err.column) {
        (0, _) => out.push_str(&format!("{file}: {err}\n")),
        (line, Some(col)) => out.push_str(&format!("{file}:{line}:{col}: {err}\n")),
        (line, None) => out.push_str(&format!("{file}:{line}: {err}\n")),
    }
    if err.line > 0 {
        out.push_str(&excerpt(source, err.line, err.end_line.max(err.line)));
    }
    out
}

/// The lines `start..=end` marked with `>>>`, one line of context around them,
/// framed like BuildKit's error output.
pub fn excerpt(source: &str, start: usize, end: usize) -> String {
    const RULE: &str = "--------------------\n";
    let lines: Vec<&str> = source.lines().collect();
    if start == 0 || start > lines.len() {
        return String::new();
    }
    let end = end.min(lines.len());
    let first = start.saturating_sub(1).max(1);
    let last = (end + 1).min(lines.len());
    let width = last.to_string().len().max(3);
    let mut out = String::from(RULE);
    for n in first..=last {
        let marker = if (start..=end).contains(&n) { ">>>" } else { "   " };
        out.push_str(&format!(" {n:>width$} | {marker} {}\n", lines[n - 1]));
    }
    out.push_str(RULE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_marks_the_span() {
        let src = "FROM a\nRUN x\nRUN y\nCMD z\n";
        let e = excerpt(src, 2, 3);
        assert!(e.contains("   1 |     FROM a"), "{e}");
        assert!(e.contains("   2 | >>> RUN x"), "{e}");
        assert!(e.contains("   3 | >>> RUN y"), "{e}");
        assert!(e.contains("   4 |     CMD z"), "{e}");
        assert_eq!(excerpt(src, 9, 9), "");
    }
}
