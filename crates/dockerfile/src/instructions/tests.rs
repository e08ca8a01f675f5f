//! Unit tests on hand-built nodes (the parser is tested on its own).

use super::*;
use crate::error::ErrorKind;

fn node(keyword: &str, flags: &[&str], args: &[&str], json: bool) -> Node {
    Node {
        keyword: keyword.to_ascii_lowercase().into(),
        keyword_original: keyword.to_string().into(),
        flags: flags.iter().map(|s| s.to_string()).collect(),
        args: args.iter().map(|s| s.to_string()).collect(),
        json,
        child: None,
        heredocs: Vec::new(),
        original: format!("{keyword} {}", args.join(" ")).into(),
        start_line: 3,
        end_line: 4,
        comments: Vec::new(),
    }
}

fn parse(keyword: &str, flags: &[&str], args: &[&str]) -> Result<Instruction, InstructionError> {
    parse_node(&node(keyword, flags, args, false))
}

fn parse_json(keyword: &str, flags: &[&str], args: &[&str]) -> Result<Instruction, InstructionError> {
    parse_node(&node(keyword, flags, args, true))
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn errors_carry_node_lines() {
    let e = parse_instruction(&node("USER", &[], &[], false)).unwrap_err();
    assert_eq!((e.line, e.end_line), (3, 4));
    assert!(matches!(e.kind, ErrorKind::Instruction(InstructionError::ExactlyOneArgument { .. })));
}

#[test]
fn unknown_instruction_suggests() {
    let e = parse("FORM", &[], &[""]).unwrap_err();
    assert_eq!(e.to_string(), "unknown instruction: FORM (did you mean FROM?)");
    let e = parse("banana", &[], &[""]).unwrap_err();
    assert!(e.to_string().starts_with("unknown instruction: BANANA (instructions are ADD, ARG,"), "{e}");
}

#[test]
fn from_forms() {
    let Instruction::From(f) = parse("FROM", &["--platform=$BUILDPLATFORM"], &["golang:1.22", "As", "Build"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(f.base_name, "golang:1.22");
    assert_eq!(f.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(f.stage_name.as_deref(), Some("build"));
    assert_eq!(f.stage_name_original.as_deref(), Some("Build"));
    assert_eq!(f.as_keyword.as_deref(), Some("As"));
    let Instruction::From(f) = parse("FROM", &[], &["scratch"]).unwrap() else { panic!() };
    assert_eq!(f.stage_name, None);
    assert_eq!(f.platform, None);
    assert!(parse("FROM", &[], &["a", "as", "x.y_z-1"]).is_ok());
}

#[test]
fn from_errors() {
    assert!(matches!(parse("FROM", &[], &[]), Err(InstructionError::FromArguments { found: 0, .. })));
    assert!(matches!(parse("FROM", &[], &["a", "b"]), Err(InstructionError::FromArguments { found: 2, .. })));
    assert!(matches!(parse("FROM", &[], &["a", "AS"]), Err(InstructionError::FromArguments { found: 2, .. })));
    assert!(matches!(parse("FROM", &[], &["a", "TO", "b"]), Err(InstructionError::FromArguments { found: 3, .. })));
    assert!(matches!(parse("FROM", &[], &["a", "AS", "b", "c"]), Err(InstructionError::FromArguments { .. })));
    for bad in ["1st", "a$b", "-x", "_x", "a/b", "é"] {
        assert!(
            matches!(parse("FROM", &[], &["a", "AS", bad]), Err(InstructionError::InvalidStageName { .. })),
            "{bad}"
        );
    }
    assert!(matches!(parse("FROM", &["--foo=x"], &["a"]), Err(InstructionError::UnknownFlag { .. })));
    assert!(matches!(parse("FROM", &["--platform"], &["a"]), Err(InstructionError::MissingFlagValue { .. })));
}

#[test]
fn run_forms() {
    let Instruction::Run(r) = parse("RUN", &[], &["echo hi && ls"]).unwrap() else { panic!() };
    assert_eq!(r.command, ShellOrExec::Shell("echo hi && ls".into()));
    assert_eq!(r.network, NetworkMode::Default);
    assert_eq!(r.security, SecurityMode::Sandbox);
    let Instruction::Run(r) = parse_json("RUN", &[], &["echo", "hi"]).unwrap() else { panic!() };
    assert_eq!(r.command, ShellOrExec::Exec(strings(&["echo", "hi"])));
    let Instruction::Run(r) = parse(
        "RUN",
        &[
            "--mount=type=cache,target=/root/.cache",
            "--network=none",
            "--security=insecure",
            "--mount=type=secret,id=tok",
            "--device=nvidia.com/gpu=all",
        ],
        &["make"],
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(r.mounts[0].kind, MountKind::Cache);
    assert_eq!(r.mounts[1].kind, MountKind::Secret);
    assert_eq!(r.network, NetworkMode::None);
    assert_eq!(r.security, SecurityMode::Insecure);
    assert_eq!(r.devices[0].name, "nvidia.com/gpu=all");
    assert_eq!(r.flags_used, strings(&["mount", "network", "security", "device"]));
    assert!(matches!(
        parse("RUN", &["--network=host"], &["x"]),
        Ok(Instruction::Run(RunInstruction { network: NetworkMode::Host, .. }))
    ));
}

#[test]
fn run_heredoc() {
    let mut n = node("RUN", &[], &["<<EOF"], false);
    n.heredocs.push(Heredoc {
        name: "EOF".into(),
        content: "echo a\n".into(),
        expand: true,
        chomp: false,
        file_descriptor: 0,
    });
    let Instruction::Run(r) = parse_node(&n).unwrap() else { panic!() };
    assert_eq!(r.command, ShellOrExec::Shell("<<EOF".into()));
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].content, "echo a\n");
}

#[test]
fn run_errors() {
    assert!(matches!(parse("RUN", &["--network=bridge"], &["x"]), Err(InstructionError::InvalidNetwork { .. })));
    assert!(matches!(parse("RUN", &["--network=HOST"], &["x"]), Err(InstructionError::InvalidNetwork { .. })));
    assert!(matches!(parse("RUN", &["--security=privileged"], &["x"]), Err(InstructionError::InvalidSecurity { .. })));
    assert!(matches!(
        parse("RUN", &["--mount=type=bogus,target=/x"], &["x"]),
        Err(InstructionError::InvalidMount { .. })
    ));
    assert!(matches!(parse("RUN", &["--device=a,b"], &["x"]), Err(InstructionError::InvalidDevice { .. })));
    assert!(matches!(
        parse("RUN", &["--network=none", "--network=host"], &["x"]),
        Err(InstructionError::DuplicateFlag { .. })
    ));
    let e = parse("RUN", &["--mount=type=cache"], &["x"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid RUN --mount=type=cache: type=cache mounts require a target (target=, dst= or destination=)"
    );
}

#[test]
fn cmd_entrypoint_shell() {
    assert_eq!(
        parse("CMD", &[], &["nginx -g daemon off;"]).unwrap(),
        Instruction::Cmd { command: ShellOrExec::Shell("nginx -g daemon off;".into()) }
    );
    assert_eq!(parse_json("CMD", &[], &[]).unwrap(), Instruction::Cmd { command: ShellOrExec::Exec(vec![]) });
    assert_eq!(
        parse_json("ENTRYPOINT", &[], &["/bin/app", "-v"]).unwrap(),
        Instruction::Entrypoint { command: ShellOrExec::Exec(strings(&["/bin/app", "-v"])) }
    );
    assert_eq!(
        parse_json("SHELL", &[], &["/bin/bash", "-c"]).unwrap(),
        Instruction::Shell { shell: strings(&["/bin/bash", "-c"]) }
    );
    assert!(matches!(parse("SHELL", &[], &["/bin/bash -c"]), Err(InstructionError::NotJson { .. })));
    assert!(matches!(parse_json("SHELL", &[], &[]), Err(InstructionError::MissingArgument { .. })));
    assert!(matches!(parse("SHELL", &[], &[]), Err(InstructionError::MissingArgument { .. })));
    assert!(matches!(parse("CMD", &["--x"], &["a"]), Err(InstructionError::UnknownFlag { .. })));
}

#[test]
fn env_and_label() {
    let Instruction::Env { pairs } = parse("ENV", &[], &["A", "1", "=", "B", "two words", ""]).unwrap() else {
        panic!()
    };
    assert_eq!(
        pairs,
        vec![
            KeyValue { key: "A".into(), value: "1".into(), legacy: false },
            KeyValue { key: "B".into(), value: "two words".into(), legacy: true },
        ]
    );
    let Instruction::Label { pairs } = parse("LABEL", &[], &["a.b", "\"x y\"", "="]).unwrap() else { panic!() };
    assert_eq!(pairs[0].value, "\"x y\"");
    assert!(matches!(parse("ENV", &[], &[]), Err(InstructionError::MissingArgument { .. })));
    assert!(matches!(parse("ENV", &[], &["", "v", "="]), Err(InstructionError::BlankName { .. })));
    assert!(matches!(parse("LABEL", &[], &["", "v", "="]), Err(InstructionError::BlankName { .. })));
    assert!(matches!(parse("ENV", &[], &["a", "b"]), Err(InstructionError::MalformedKeyValues { .. })));
    assert!(matches!(parse("LABEL", &["--x=1"], &["a", "b", "="]), Err(InstructionError::UnknownFlag { .. })));
}

#[test]
fn arg() {
    let Instruction::Arg { args } = parse("ARG", &[], &["A", "B=1", "C=\"x y\"", "D="]).unwrap() else { panic!() };
    assert_eq!(
        args,
        vec![
            ArgDef { name: "A".into(), default: None },
            ArgDef { name: "B".into(), default: Some("1".into()) },
            ArgDef { name: "C".into(), default: Some("\"x y\"".into()) },
            ArgDef { name: "D".into(), default: Some(String::new()) },
        ]
    );
    assert!(matches!(parse("ARG", &[], &[]), Err(InstructionError::MissingArgument { .. })));
    assert!(matches!(parse("ARG", &[], &["=1"]), Err(InstructionError::BlankName { .. })));
    assert!(matches!(parse("ARG", &["--required"], &["A"]), Err(InstructionError::UnknownFlag { .. })));
}

#[test]
fn copy_forms() {
    let Instruction::Copy(c) = parse(
        "COPY",
        &["--from=build", "--chown=app:app", "--chmod=0755", "--link", "--parents", "--exclude=*.md", "--exclude=.git"],
        &["a", "b/", "/dest/"],
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(c.sources, vec![Source::Path("a".into()), Source::Path("b/".into())]);
    assert_eq!(c.dest, "/dest/");
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link && c.parents);
    assert_eq!(c.exclude, strings(&["*.md", ".git"]));
    let Instruction::Copy(c) = parse("COPY", &["--chmod=u+x,go=rX", "--link=false"], &["a", "b"]).unwrap() else {
        panic!()
    };
    assert!(!c.link);
    assert!(parse("COPY", &["--chmod=$MODE"], &["a", "b"]).is_ok());
    assert!(parse("COPY", &["--chmod="], &["a", "b"]).is_ok());
}

#[test]
fn copy_heredoc_sources() {
    let mut n = node("COPY", &[], &["<<A", "file", "<<-\"B\"", "/dest/"], false);
    n.heredocs = vec![
        Heredoc { name: "A".into(), content: "one\n".into(), expand: true, chomp: false, file_descriptor: 0 },
        Heredoc { name: "B".into(), content: "two\n".into(), expand: false, chomp: true, file_descriptor: 0 },
    ];
    let Instruction::Copy(c) = parse_node(&n).unwrap() else { panic!() };
    assert_eq!(
        c.sources,
        vec![
            Source::Heredoc { name: "A".into(), content: "one\n".into(), expand: true, chomp: false },
            Source::Path("file".into()),
            Source::Heredoc { name: "B".into(), content: "two\n".into(), expand: false, chomp: true },
        ]
    );
    assert_eq!(c.source_paths().collect::<Vec<_>>(), vec!["file"]);
    let n = node("COPY", &[], &["a", "<<EOF"], false);
    assert!(matches!(parse_node(&n), Err(InstructionError::HeredocDestination { instruction: "COPY" })));
}

#[test]
fn copy_errors() {
    assert!(matches!(parse("COPY", &[], &[]), Err(InstructionError::MissingDestination { .. })));
    let e = parse("COPY", &[], &["only"]).unwrap_err();
    assert!(e.to_string().starts_with("COPY requires at least two arguments"), "{e}");
    assert!(matches!(parse("COPY", &["--chmod=8x"], &["a", "b"]), Err(InstructionError::InvalidChmod { .. })));
    assert!(matches!(parse("COPY", &["--chmod=10000"], &["a", "b"]), Err(InstructionError::InvalidChmod { .. })));
    assert!(matches!(parse("COPY", &["--keep-git-dir"], &["a", "b"]), Err(InstructionError::UnknownFlag { .. })));
    assert!(matches!(parse("COPY", &["--link=maybe"], &["a", "b"]), Err(InstructionError::InvalidBoolFlag { .. })));
    assert!(matches!(
        parse("COPY", &["--from=a", "--from=b"], &["a", "b"]),
        Err(InstructionError::DuplicateFlag { .. })
    ));
}

#[test]
fn add_forms_and_errors() {
    let Instruction::Add(a) = parse(
        "ADD",
        &["--keep-git-dir", "--checksum=sha256:abc", "--unpack=false", "--chown=1", "--exclude=x"],
        &["https://example.com/a.tar.gz", "/x"],
    )
    .unwrap() else {
        panic!()
    };
    assert!(a.keep_git_dir);
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert_eq!(a.unpack, Some(false));
    assert_eq!(a.exclude, strings(&["x"]));
    let Instruction::Add(a) = parse("ADD", &[], &["a", "b"]).unwrap() else { panic!() };
    assert_eq!(a.unpack, None);
    assert!(matches!(parse("ADD", &["--from=x"], &["a", "b"]), Err(InstructionError::UnknownFlag { .. })));
    assert!(matches!(parse("ADD", &["--parents"], &["a", "b"]), Err(InstructionError::UnknownFlag { .. })));
    assert!(matches!(parse("ADD", &[], &["a"]), Err(InstructionError::MissingDestination { instruction: "ADD" })));
    assert!(matches!(parse("ADD", &["--chmod=rwx"], &["a", "b"]), Err(InstructionError::InvalidChmod { .. })));
}

#[test]
fn single_argument_instructions() {
    assert_eq!(parse("WORKDIR", &[], &["/app"]).unwrap(), Instruction::Workdir { path: "/app".into() });
    assert_eq!(parse("USER", &[], &["app:app"]).unwrap(), Instruction::User { user: "app:app".into() });
    assert_eq!(parse("STOPSIGNAL", &[], &["SIGTERM"]).unwrap(), Instruction::StopSignal { signal: "SIGTERM".into() });
    assert_eq!(parse("MAINTAINER", &[], &["Jo <jo@x>"]).unwrap(), Instruction::Maintainer { name: "Jo <jo@x>".into() });
    for kw in ["WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"] {
        assert!(matches!(parse(kw, &[], &[]), Err(InstructionError::ExactlyOneArgument { .. })), "{kw}");
        assert!(matches!(parse(kw, &["--x=1"], &["a"]), Err(InstructionError::UnknownFlag { .. })), "{kw}");
    }
}

#[test]
fn expose() {
    assert_eq!(
        parse("EXPOSE", &[], &["80", "443/tcp", "53/UDP", "8000-8010", "$PORT", "\"90\""]).unwrap(),
        Instruction::Expose { ports: strings(&["80", "443/tcp", "53/UDP", "8000-8010", "$PORT", "\"90\""]) }
    );
    assert!(matches!(parse("EXPOSE", &[], &[]), Err(InstructionError::MissingArgument { .. })));
    assert!(matches!(parse("EXPOSE", &[], &["80/http"]), Err(InstructionError::InvalidPort { .. })));
    assert!(matches!(parse("EXPOSE", &[], &["70000"]), Err(InstructionError::InvalidPort { .. })));
    assert!(matches!(parse("EXPOSE", &[], &["90-80"]), Err(InstructionError::InvalidPort { .. })));
}

#[test]
fn volume() {
    assert_eq!(
        parse_json("VOLUME", &[], &["/a", " /b "]).unwrap(),
        Instruction::Volume { paths: strings(&["/a", "/b"]) }
    );
    assert!(matches!(parse("VOLUME", &[], &[]), Err(InstructionError::MissingArgument { .. })));
    assert!(matches!(parse_json("VOLUME", &[], &["/a", " "]), Err(InstructionError::EmptyVolume)));
}

#[test]
fn healthcheck() {
    assert_eq!(parse("HEALTHCHECK", &[], &["NONE"]).unwrap(), Instruction::Healthcheck(Healthcheck::None));
    assert_eq!(parse("HEALTHCHECK", &[], &["none"]).unwrap(), Instruction::Healthcheck(Healthcheck::None));
    let i = parse(
        "HEALTHCHECK",
        &["--interval=30s", "--timeout=1m30s", "--start-period=0", "--start-interval=500ms", "--retries=5"],
        &["CMD", "curl -f http://localhost/ || exit 1"],
    )
    .unwrap();
    assert_eq!(i.healthcheck_test(), Some(strings(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"])));
    let Instruction::Healthcheck(Healthcheck::Check { test, interval, timeout, start_period, start_interval, retries }) =
        i
    else {
        panic!()
    };
    assert_eq!(test, ShellOrExec::Shell("curl -f http://localhost/ || exit 1".into()));
    assert_eq!(interval, Some(Duration::from_secs(30)));
    assert_eq!(timeout, Some(Duration::from_secs(90)));
    assert_eq!(start_period, None);
    assert_eq!(start_interval, Some(Duration::from_millis(500)));
    assert_eq!(retries, Some(5));
    let i = parse_json("HEALTHCHECK", &["--retries=0"], &["CMD", "/bin/check", "-q"]).unwrap();
    assert_eq!(i.healthcheck_test(), Some(strings(&["CMD", "/bin/check", "-q"])));
    let Instruction::Healthcheck(Healthcheck::Check { retries, .. }) = i else { panic!() };
    assert_eq!(retries, None);
}

#[test]
fn healthcheck_errors() {
    use InstructionError as E;
    assert!(matches!(parse("HEALTHCHECK", &[], &[]), Err(E::MissingArgument { .. })));
    assert!(matches!(parse("HEALTHCHECK", &[], &["NONE", "x"]), Err(E::HealthcheckNoneArguments)));
    assert!(matches!(parse("HEALTHCHECK", &["--interval=5s"], &["NONE"]), Err(E::HealthcheckNoneFlags { .. })));
    assert!(matches!(parse("HEALTHCHECK", &[], &["CONNECT", "x"]), Err(E::HealthcheckType { .. })));
    assert!(matches!(parse("HEALTHCHECK", &[], &["CMD"]), Err(E::HealthcheckMissingCommand)));
    assert!(matches!(parse_json("HEALTHCHECK", &[], &["CMD"]), Err(E::HealthcheckMissingCommand)));
    assert!(matches!(parse("HEALTHCHECK", &["--interval=5"], &["CMD", "x"]), Err(E::InvalidDuration { .. })));
    assert!(matches!(parse("HEALTHCHECK", &["--timeout=5y"], &["CMD", "x"]), Err(E::InvalidDuration { .. })));
    assert!(matches!(parse("HEALTHCHECK", &["--start-period=999us"], &["CMD", "x"]), Err(E::DurationTooShort { .. })));
    assert!(matches!(parse("HEALTHCHECK", &["--interval=-1s"], &["CMD", "x"]), Err(E::DurationTooShort { .. })));
    assert!(matches!(parse("HEALTHCHECK", &["--retries=-1"], &["CMD", "x"]), Err(E::NegativeRetries { value: -1 })));
    assert!(matches!(parse("HEALTHCHECK", &["--retries=three"], &["CMD", "x"]), Err(E::InvalidRetries { .. })));
    assert!(matches!(parse("HEALTHCHECK", &["--retries=3000000000"], &["CMD", "x"]), Err(E::InvalidRetries { .. })));
    assert!(matches!(parse("HEALTHCHECK", &["--period=1s"], &["CMD", "x"]), Err(E::UnknownFlag { .. })));
    assert!(parse("HEALTHCHECK", &["--interval=1ms", "--retries=+2"], &["CMD", "x"]).is_ok());
    assert!(parse("HEALTHCHECK", &["--interval="], &["CMD", "x"]).is_ok());
}

fn onbuild(child: Node) -> Node {
    let mut n = node("ONBUILD", &[], &[], false);
    n.original = format!("ONBUILD {}", child.original).into();
    n.child = Some(Box::new(child));
    n
}

#[test]
fn onbuild_triggers() {
    let n = onbuild(node("RUN", &[], &["make"], false));
    let Instruction::Onbuild { trigger, expression } = parse_node(&n).unwrap() else { panic!() };
    assert_eq!(
        *trigger,
        Instruction::Run(RunInstruction {
            command: ShellOrExec::Shell("make".into()),
            heredocs: vec![],
            mounts: vec![],
            network: NetworkMode::Default,
            security: SecurityMode::Sandbox,
            devices: vec![],
            flags_used: vec![],
        })
    );
    assert_eq!(expression, "RUN make");

    let mut child = node("COPY", &["--from=build"], &["<<EOF", "/x"], false);
    child.original = "COPY --from=build <<EOF /x".into();
    child.heredocs.push(Heredoc {
        name: "EOF".into(),
        content: "hi\n".into(),
        expand: true,
        chomp: false,
        file_descriptor: 0,
    });
    let mut n = onbuild(child);
    n.original = "  onbuild   COPY --from=build <<EOF /x".into();
    let Instruction::Onbuild { trigger, expression } = parse_node(&n).unwrap() else { panic!() };
    assert_eq!(expression, "COPY --from=build <<EOF /x\nhi\nEOF");
    assert_eq!(trigger.stage_references(), vec!["build"]);
}

#[test]
fn onbuild_errors() {
    use InstructionError as E;
    assert!(matches!(parse("ONBUILD", &[], &[]), Err(E::MissingArgument { .. })));
    assert!(matches!(parse_node(&onbuild(node("ONBUILD", &[], &[], false))), Err(E::OnbuildChained)));
    assert!(matches!(parse_node(&onbuild(node("FROM", &[], &["x"], false))), Err(E::OnbuildTrigger { .. })));
    assert!(matches!(parse_node(&onbuild(node("maintainer", &[], &["x"], false))), Err(E::OnbuildTrigger { .. })));
    assert!(matches!(parse_node(&onbuild(node("COPY", &[], &["x"], false))), Err(E::MissingDestination { .. })));
    assert!(matches!(parse_node(&onbuild(node("FOO", &[], &[""], false))), Err(E::UnknownInstruction { .. })));
    let mut n = onbuild(node("RUN", &[], &["x"], false));
    n.flags.push("--x".into());
    assert!(matches!(parse_node(&n), Err(E::UnknownFlag { instruction: "ONBUILD", .. })));
    let e = parse_node(&onbuild(node("FROM", &[], &["x"], false))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "FROM isn't allowed as an ONBUILD trigger (any instruction except ONBUILD, FROM and MAINTAINER may be)"
    );
}

fn ast(nodes: Vec<Node>) -> Ast {
    Ast { directives: Default::default(), escape: '\\', children: nodes, warnings: Vec::new() }
}

#[test]
fn stages() {
    let mut from = node("FROM", &[], &["alpine", "AS", "Base"], false);
    from.comments = vec!["base the base stage".into()];
    let parsed = parse_stages(&ast(vec![
        node("ARG", &[], &["V=1"], false),
        from,
        node("RUN", &[], &["x"], false),
        node("from", &[], &["base"], false),
        node("COPY", &["--from=base"], &["a", "b"], false),
    ]))
    .unwrap();
    assert_eq!(parsed.meta_args.len(), 1);
    assert_eq!(parsed.stages.len(), 2);
    let s = &parsed.stages[0];
    assert_eq!((s.index, s.name.as_deref(), s.name_original.as_deref()), (0, Some("base"), Some("Base")));
    assert_eq!(s.description().as_deref(), Some("the base stage"));
    assert_eq!(s.commands.len(), 1);
    assert_eq!(parsed.stages[1].keyword_original, "from");
    assert_eq!(parsed.stages[1].commands[0].instruction.stage_references(), vec!["base"]);
}

#[test]
fn nothing_but_arg_before_from() {
    let e = parse_stages(&ast(vec![node("ENV", &[], &["A", "1", "="], false), node("FROM", &[], &["x"], false)]))
        .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Instruction(InstructionError::NoStage { .. })));
    assert_eq!(e.line, 3);
    assert!(e.to_string().starts_with("ENV cannot come before the first FROM"), "{e}");
}

/// A fake expander: `$X` → value of X from a small table, everything else kept.
fn expander(word: &str) -> Result<String, crate::shell::ShellError> {
    let mut out = word.to_string();
    for (k, v) in [("$DIR", "/cache"), ("$MODE", "0700"), ("$BAD", "9x"), ("$PORTS", "80 443/udp"), ("$EMPTY", "")] {
        out = out.replace(k, v);
    }
    Ok(out)
}

#[test]
fn expand_fields() {
    let copy = parse("COPY", &["--from=$STAGE", "--chown=$DIR", "--chmod=$MODE"], &["$DIR/a", "$DIR"]).unwrap();
    let Instruction::Copy(c) = copy.expand(&mut expander).unwrap() else { panic!() };
    assert_eq!(c.from.as_deref(), Some("$STAGE"));
    assert_eq!(c.chown.as_deref(), Some("/cache"));
    assert_eq!(c.chmod.as_deref(), Some("0700"));
    assert_eq!(c.sources, vec![Source::Path("/cache/a".into())]);
    assert_eq!(c.dest, "/cache");

    let env = parse("ENV", &[], &["$DIR", "$MODE", "="]).unwrap();
    let Instruction::Env { pairs } = env.expand(&mut expander).unwrap() else { panic!() };
    assert_eq!((pairs[0].key.as_str(), pairs[0].value.as_str()), ("/cache", "0700"));

    let cmd = parse("CMD", &[], &["echo $DIR"]).unwrap();
    assert_eq!(cmd.expand(&mut expander).unwrap(), cmd);
    let arg = parse("ARG", &[], &["A=$DIR"]).unwrap();
    assert_eq!(arg.expand(&mut expander).unwrap(), arg);

    let expose = parse("EXPOSE", &[], &["$PORTS", "22", "$EMPTY"]).unwrap();
    assert_eq!(expose.expand(&mut expander).unwrap(), Instruction::Expose { ports: strings(&["80", "443/udp", "22"]) });

    let run = parse("RUN", &["--mount=type=cache,target=$DIR,mode=$MODE,from=base"], &["x"]).unwrap();
    let Instruction::Run(r) = run.expand(&mut expander).unwrap() else { panic!() };
    assert_eq!(r.mounts[0].target.as_deref(), Some("/cache"));
    assert_eq!(r.mounts[0].mode, Some(0o700));
    assert_eq!(r.mounts[0].from.as_deref(), Some("base"));
    assert_eq!(r.command, ShellOrExec::Shell("x".into()));
}

#[test]
fn expand_then_validate() {
    let copy = parse("COPY", &["--chmod=$BAD"], &["a", "b"]).unwrap();
    assert!(matches!(
        copy.expand_and_validate(&mut expander),
        Err(ExpandError::Instruction(InstructionError::InvalidChmod { .. }))
    ));
    let run = parse("RUN", &["--mount=type=cache,target=/x,mode=$BAD"], &["x"]).unwrap();
    assert!(matches!(
        run.expand_and_validate(&mut expander),
        Err(ExpandError::Instruction(InstructionError::InvalidMount { .. }))
    ));
    let run = parse("RUN", &["--mount=type=bind,target=$EMPTY"], &["x"]).unwrap();
    assert!(matches!(
        run.expand_and_validate(&mut expander),
        Err(ExpandError::Instruction(InstructionError::InvalidMount { reason: MountError::MissingTarget { .. }, .. }))
    ));
    let expose = parse("EXPOSE", &[], &["$BAD"]).unwrap();
    assert!(expose.expand_and_validate(&mut expander).is_err());
    let ok = parse("COPY", &["--chmod=$MODE"], &["a", "b"]).unwrap();
    assert!(ok.expand_and_validate(&mut expander).is_ok());
    let e: ErrorKind = ExpandError::Instruction(InstructionError::EmptyVolume).into();
    assert!(matches!(e, ErrorKind::Instruction(InstructionError::EmptyVolume)));
}

#[test]
fn keywords() {
    assert_eq!(parse("STOPSIGNAL", &[], &["9"]).unwrap().keyword(), "STOPSIGNAL");
    assert_eq!(parse_json("CMD", &[], &[]).unwrap().keyword(), "CMD");
    for kw in ALL_KEYWORDS {
        let lower = kw.to_ascii_lowercase();
        assert!(
            !matches!(parse_node(&node(&lower, &[], &[], false)), Err(InstructionError::UnknownInstruction { .. })),
            "{kw}"
        );
    }
}

#[test]
fn serializes_to_json() {
    let i = parse("HEALTHCHECK", &["--interval=1s"], &["CMD", "true"]).unwrap();
    let json = serde_json::to_string(&i).unwrap();
    assert!(json.starts_with("{\"HEALTHCHECK\":{\"check\":"), "{json}");
    let r = parse("RUN", &["--mount=type=cache,target=/x"], &["x"]).unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"type\":\"cache\""), "{json}");
    assert!(serde_json::to_string(&parse("HEALTHCHECK", &[], &["NONE"]).unwrap()).is_ok());
}

#[test]
fn definition_descriptions() {
    let comments = strings(&["other text", "NAME the description", "NAME second"]);
    assert_eq!(definition_description(&comments, "NAME").as_deref(), Some("the description"));
    assert_eq!(definition_description(&comments, "X"), None);
    assert_eq!(definition_description(&comments, ""), None);
}
