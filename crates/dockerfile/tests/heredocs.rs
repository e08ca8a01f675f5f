//! Heredocs, modelled on BuildKit's parser_heredoc_test.go cases: where they
//! are recognised, what their bodies hold, how they affect lines and expansion.

use distill_dockerfile::instructions::{Instruction, ShellOrExec, Source, parse_stages};
use distill_dockerfile::{Heredoc, parse};

fn heredocs(src: &str, index: usize) -> Vec<Heredoc> {
    let ast = parse(src.as_bytes()).unwrap_or_else(|e| panic!("line {}: {e}", e.line));
    let node = &ast.children[index];
    node.child.as_deref().unwrap_or(node).heredocs.clone()
}

fn doc(name: &str, content: &str, expand: bool, chomp: bool, fd: u32) -> Heredoc {
    Heredoc { name: name.into(), content: content.into(), expand, chomp, file_descriptor: fd }
}

#[test]
fn run_without_command() {
    let d = heredocs("FROM x\nRUN <<EOF\necho hello\necho world\nEOF\n", 1);
    assert_eq!(d, vec![doc("EOF", "echo hello\necho world\n", true, false, 0)]);
}

#[test]
fn run_with_command_and_redirections() {
    let src = "FROM x\nRUN python3 <<EOF > /tmp/out 2>&1\nprint('hi')\nEOF\n";
    assert_eq!(heredocs(src, 1), vec![doc("EOF", "print('hi')\n", true, false, 0)]);
    let ast = parse(src.as_bytes()).unwrap();
    assert_eq!(ast.children[1].args, vec!["python3 <<EOF > /tmp/out 2>&1"]);
}

#[test]
fn quoted_delimiters_disable_expansion() {
    for (word, name) in [("'EOF'", "EOF"), ("\"EOF\"", "EOF"), ("E'O'F", "EOF"), ("\"E\"OF", "EOF")] {
        let src = format!("FROM x\nRUN <<{word}\n$HOME\n{name}\n");
        assert_eq!(heredocs(&src, 1), vec![doc(name, "$HOME\n", false, false, 0)], "{word}");
    }
}

#[test]
fn chomp_strips_leading_tabs_from_body_and_terminator() {
    let src = "FROM x\nRUN <<-EOF\n\t\techo a\n\t  echo b\n\tEOF\n";
    assert_eq!(heredocs(src, 1), vec![doc("EOF", "echo a\n  echo b\n", true, true, 0)]);
    // Without `-`, a tab-indented terminator does not end the body.
    let err = parse(b"FROM x\nRUN <<EOF\necho\n\tEOF\n").unwrap_err();
    assert!(err.to_string().contains("unterminated heredoc"), "{err}");
}

#[test]
fn several_heredocs_and_file_descriptors() {
    let src = "FROM x\nRUN 3<<A 4<<-'B' cat /dev/fd/3 /dev/fd/4\nfirst\nA\n\tsecond\n\tB\nRUN echo next\n";
    assert_eq!(heredocs(src, 1), vec![doc("A", "first\n", true, false, 3), doc("B", "second\n", false, true, 4)]);
    let ast = parse(src.as_bytes()).unwrap();
    assert_eq!((ast.children[1].start_line, ast.children[1].end_line), (2, 6));
    assert_eq!((ast.children[2].start_line, ast.children[2].end_line), (7, 7));
}

#[test]
fn copy_and_add_heredocs_become_sources() {
    let src = "FROM x\nCOPY <<one <<two /dest/\nhello\none\nworld\ntwo\nADD <<EOF /file\ncontent\nEOF\n";
    let ast = parse(src.as_bytes()).unwrap();
    let parsed = parse_stages(&ast).unwrap();
    let Instruction::Copy(copy) = &parsed.stages[0].commands[0].instruction else { panic!("COPY") };
    assert_eq!(copy.dest, "/dest/");
    let names: Vec<(&str, &str)> = copy
        .sources
        .iter()
        .map(|s| match s {
            Source::Heredoc { name, content, .. } => (name.as_str(), content.as_str()),
            Source::Path(p) => (p.as_str(), ""),
        })
        .collect();
    assert_eq!(names, vec![("one", "hello\n"), ("two", "world\n")]);
    let Instruction::Add(add) = &parsed.stages[0].commands[1].instruction else { panic!("ADD") };
    assert!(matches!(&add.sources[0], Source::Heredoc { content, .. } if content == "content\n"));
}

#[test]
fn run_heredoc_body_is_kept_on_the_instruction() {
    let ast = parse(b"FROM x\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n").unwrap();
    let parsed = parse_stages(&ast).unwrap();
    let Instruction::Run(run) = &parsed.stages[0].commands[0].instruction else { panic!("RUN") };
    assert_eq!(run.command, ShellOrExec::Shell("<<EOF".into()));
    assert_eq!(run.heredocs[0].content, "#!/usr/bin/env python3\nprint(1)\n");
}

#[test]
fn not_heredocs() {
    // JSON form, quoted or escaped `<<`, `<<<` here-strings, other instructions.
    for src in [
        "FROM x\nRUN [\"cat\", \"<<EOF\"]\n",
        "FROM x\nRUN echo '<<EOF'\n",
        "FROM x\nRUN echo \\<<EOF\n",
        "FROM x\nRUN cat <<<word\n",
        "FROM x\nCMD cat <<EOF\n",
        "FROM x\nENV A=<<EOF\n",
    ] {
        let ast = parse(src.as_bytes()).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert!(ast.children[1].heredocs.is_empty(), "{src:?}");
    }
}

#[test]
fn onbuild_heredoc() {
    let src = "FROM x\nONBUILD RUN <<EOF\necho on build\nEOF\nRUN true\n";
    assert_eq!(heredocs(src, 1), vec![doc("EOF", "echo on build\n", true, false, 0)]);
    let ast = parse(src.as_bytes()).unwrap();
    assert_eq!(ast.children[2].start_line, 5);
}

#[test]
fn heredoc_body_lines_are_not_instructions_or_comments() {
    let src = "FROM x\nRUN <<EOF\n# not a comment\nFROM y\n\nEOF\n";
    let ast = parse(src.as_bytes()).unwrap();
    assert_eq!(ast.children.len(), 2);
    assert_eq!(ast.children[1].heredocs[0].content, "# not a comment\nFROM y\n\n");
}

#[test]
fn unterminated_heredoc_reports_the_instruction_line() {
    let err = parse(b"FROM x\nRUN <<A <<B\none\nA\ntwo\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.to_string().contains("\"B\""), "{err}");
}

#[test]
fn heredoc_after_continuation() {
    let src = "FROM x\nRUN cat \\\n  <<EOF\nbody\nEOF\n";
    assert_eq!(heredocs(src, 1), vec![doc("EOF", "body\n", true, false, 0)]);
    let ast = parse(src.as_bytes()).unwrap();
    assert_eq!((ast.children[1].start_line, ast.children[1].end_line), (2, 5));
}
