//! Typed instructions from real Dockerfile text: one test per validation
//! error of every instruction (error kind and lines), and positive cases for
//! every instruction.

use std::time::Duration;

use distill_dockerfile::ErrorKind;
use distill_dockerfile::instructions::{
    AddInstruction, ArgDef, CopyInstruction, Healthcheck, Instruction, InstructionError, KeyValue, MountError,
    MountKind, NetworkMode, Parsed, SecurityMode, ShellOrExec, Source, parse_stages,
};

fn stages(src: &str) -> Parsed {
    let ast = distill_dockerfile::parse(src.as_bytes()).unwrap_or_else(|e| panic!("parse failed: {e}\n{src}"));
    parse_stages(&ast).unwrap_or_else(|e| panic!("line {}: {e}\n{src}", e.line))
}

/// The instruction error for `src`, with its start and end line.
fn failure(src: &str) -> (InstructionError, usize, usize) {
    let ast = distill_dockerfile::parse(src.as_bytes()).unwrap_or_else(|e| panic!("parse failed: {e}\n{src}"));
    match parse_stages(&ast) {
        Ok(p) => panic!("expected an error for\n{src}\ngot {p:?}"),
        Err(e) => match e.kind {
            ErrorKind::Instruction(kind) => (kind, e.line, e.end_line),
            other => panic!("expected an instruction error, got {other:?}"),
        },
    }
}

/// `line` placed on line 3 of a Dockerfile, after a FROM and a comment.
fn fail_at_3(line: &str) -> InstructionError {
    let src = format!("FROM alpine\n# next line is the one\n{line}\nRUN true\n");
    let (kind, start, end) = failure(&src);
    assert_eq!((start, end), (3, 3), "{kind}");
    kind
}

/// Every instruction of a stage.
fn commands(src: &str) -> Vec<Instruction> {
    let parsed = stages(src);
    parsed.stages.into_iter().flat_map(|s| s.commands).map(|c| c.instruction).collect()
}

fn one(line: &str) -> Instruction {
    let mut all = commands(&format!("FROM alpine\n{line}\n"));
    assert_eq!(all.len(), 1, "{line}");
    all.remove(0)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------- general

#[test]
fn unknown_instruction() {
    let e = fail_at_3("FROM2 alpine");
    assert!(matches!(e, InstructionError::UnknownInstruction { .. }), "{e}");
    let e = fail_at_3("COPPY a b");
    assert_eq!(e.to_string(), "unknown instruction: COPPY (did you mean COPY?)");
}

#[test]
fn instruction_before_first_from() {
    let (e, start, end) = failure("ARG V=1\n\nENV A=1\nFROM alpine\n");
    assert!(matches!(e, InstructionError::NoStage { ref instruction } if instruction == "ENV"), "{e}");
    assert_eq!((start, end), (3, 3));
    let (e, start, _) = failure("RUN true\n");
    assert!(matches!(e, InstructionError::NoStage { .. }));
    assert_eq!(start, 1);
}

#[test]
fn errors_span_continuation_lines() {
    let (e, start, end) = failure("FROM alpine\nCOPY \\\n  --chmod=8x \\\n  a b\n");
    assert!(matches!(e, InstructionError::InvalidChmod { .. }), "{e}");
    assert_eq!((start, end), (2, 4));
}

#[test]
fn unknown_flag() {
    let e = fail_at_3("COPY --foo=bar a b");
    assert!(matches!(e, InstructionError::UnknownFlag { instruction: "COPY", .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "unknown flag: --foo for COPY (did you mean --from? allowed: --from, --chown, --chmod, --link, --parents, --exclude)"
    );
    let e = fail_at_3("WORKDIR --x=1 /a");
    assert_eq!(e.to_string(), "unknown flag: --x for WORKDIR (WORKDIR takes no flags)");
}

#[test]
fn duplicate_flag() {
    let e = fail_at_3("COPY --from=a --from=b x y");
    assert!(matches!(e, InstructionError::DuplicateFlag { .. }), "{e}");
    // Repeatable flags are fine.
    one("COPY --exclude=a --exclude=b x y");
    one("RUN --mount=type=tmpfs,target=/a --mount=type=tmpfs,target=/b true");
}

#[test]
fn flag_without_value() {
    assert!(matches!(fail_at_3("COPY --chown a b"), InstructionError::MissingFlagValue { .. }));
    assert!(matches!(fail_at_3("COPY --link= a b"), InstructionError::MissingBoolFlagValue { .. }));
    assert!(matches!(fail_at_3("COPY --link=yes a b"), InstructionError::InvalidBoolFlag { .. }));
}

// ---------------------------------------------------------------- FROM

#[test]
fn from_positive() {
    let parsed = stages(
        "ARG BASE=alpine\n# build compiles the app\nFROM --platform=$BUILDPLATFORM ${BASE}:3 As Build\nRUN true\nfrom build\n",
    );
    assert_eq!(parsed.meta_args.len(), 1);
    let s = &parsed.stages[0];
    assert_eq!(s.index, 0);
    assert_eq!(s.name.as_deref(), Some("build"));
    assert_eq!(s.name_original.as_deref(), Some("Build"));
    assert_eq!(s.as_keyword.as_deref(), Some("As"));
    assert_eq!(s.base_name, "${BASE}:3");
    assert_eq!(s.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!((s.start_line, s.end_line), (3, 3));
    assert_eq!(s.description().as_deref(), Some("compiles the app"));
    assert_eq!(s.commands.len(), 1);
    let s = &parsed.stages[1];
    assert_eq!((s.index, s.name.as_deref(), s.base_name.as_str()), (1, None, "build"));
    assert_eq!(s.keyword_original, "from");
}

#[test]
fn from_argument_count() {
    let (e, start, _) = failure("FROM\n");
    assert!(matches!(e, InstructionError::FromArguments { found: 0, .. }), "{e}");
    assert_eq!(start, 1);
    assert!(matches!(fail_at_3("FROM a b"), InstructionError::FromArguments { found: 2, .. }));
    assert!(matches!(fail_at_3("FROM a AS"), InstructionError::FromArguments { found: 2, .. }));
    assert!(matches!(fail_at_3("FROM a TO b"), InstructionError::FromArguments { found: 3, .. }));
    assert!(matches!(fail_at_3("FROM a AS b c"), InstructionError::FromArguments { found: 4, .. }));
}

#[test]
fn from_stage_name() {
    let e = fail_at_3("FROM alpine AS 1st");
    assert!(matches!(e, InstructionError::InvalidStageName { ref name } if name == "1st"), "{e}");
    assert!(matches!(fail_at_3("FROM alpine AS my/stage"), InstructionError::InvalidStageName { .. }));
    assert!(matches!(fail_at_3("FROM alpine AS $NAME"), InstructionError::InvalidStageName { .. }));
}

#[test]
fn from_flags() {
    assert!(matches!(fail_at_3("FROM --platform alpine"), InstructionError::MissingFlagValue { .. }));
    assert!(matches!(fail_at_3("FROM --arch=arm64 alpine"), InstructionError::UnknownFlag { instruction: "FROM", .. }));
}

// ---------------------------------------------------------------- RUN

#[test]
fn run_positive() {
    let Instruction::Run(r) = one("RUN apt-get update && apt-get install -y curl") else { panic!() };
    assert_eq!(r.command, ShellOrExec::Shell("apt-get update && apt-get install -y curl".into()));
    let Instruction::Run(r) = one(r#"RUN ["/bin/echo", "hello world"]"#) else { panic!() };
    assert_eq!(r.command, ShellOrExec::Exec(strings(&["/bin/echo", "hello world"])));
    let Instruction::Run(r) = one(
        "RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked --mount=type=secret,id=npmrc,target=/root/.npmrc \
         --mount=type=ssh --mount=from=build,source=/out,target=/in --mount=type=tmpfs,target=/tmp,size=64m \
         --network=none --security=insecure --device=vendor.com/gpu=all,required pip install .",
    ) else {
        panic!()
    };
    let kinds: Vec<MountKind> = r.mounts.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, vec![MountKind::Cache, MountKind::Secret, MountKind::Ssh, MountKind::Bind, MountKind::Tmpfs]);
    assert_eq!(r.mounts[3].from.as_deref(), Some("build"));
    assert_eq!(r.mounts[4].size, Some(64 << 20));
    assert_eq!(r.network, NetworkMode::None);
    assert_eq!(r.security, SecurityMode::Insecure);
    assert!(r.devices[0].required);
    assert_eq!(Instruction::Run(r.clone()).stage_references(), vec!["build"]);
}

#[test]
fn run_heredoc() {
    let Instruction::Run(r) = one("RUN <<EOF\nset -e\necho $HOME\nEOF") else { panic!() };
    assert_eq!(r.command, ShellOrExec::Shell("<<EOF".into()));
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].content, "set -e\necho $HOME\n");
}

#[test]
fn run_network_and_security() {
    let e = fail_at_3("RUN --network=bridge true");
    assert!(matches!(e, InstructionError::InvalidNetwork { ref value } if value == "bridge"), "{e}");
    assert_eq!(e.to_string(), "invalid network mode \"bridge\" for RUN --network: expected default, none or host");
    let e = fail_at_3("RUN --security=privileged true");
    assert!(matches!(e, InstructionError::InvalidSecurity { .. }), "{e}");
}

fn mount_error(line: &str) -> MountError {
    match fail_at_3(line) {
        InstructionError::InvalidMount { reason, .. } => reason,
        other => panic!("expected a mount error, got {other}"),
    }
}

#[test]
fn run_mount_rules() {
    assert!(matches!(mount_error("RUN --mount=type=nfs,target=/x true"), MountError::UnsupportedType { .. }));
    assert!(matches!(mount_error("RUN --mount=target=/x,colour=red true"), MountError::UnknownKey { .. }));
    assert!(matches!(mount_error("RUN --mount=target=/x,readonlyish true"), MountError::NotKeyValue { .. }));
    assert!(matches!(mount_error("RUN --mount=type=bind,source=/a true"), MountError::MissingTarget { .. }));
    assert!(matches!(mount_error("RUN --mount=type=cache true"), MountError::MissingTarget { .. }));
    assert!(matches!(mount_error("RUN --mount=type=tmpfs,size=1m true"), MountError::MissingTarget { .. }));
    assert!(matches!(
        mount_error("RUN --mount=type=bind,target=/x,mode=0700 true"),
        MountError::KeyNotAllowed { key: "mode", kind: MountKind::Bind }
    ));
    assert!(matches!(
        mount_error("RUN --mount=type=tmpfs,target=/x,uid=1 true"),
        MountError::KeyNotAllowed { key: "uid", .. }
    ));
    assert!(matches!(
        mount_error("RUN --mount=type=cache,target=/x,required true"),
        MountError::KeyNotAllowed { key: "required", .. }
    ));
    assert!(matches!(
        mount_error("RUN --mount=type=cache,target=/x,size=1g true"),
        MountError::KeyNotAllowed { key: "size", .. }
    ));
    assert!(matches!(
        mount_error("RUN --mount=type=tmpfs,target=/x,sharing=locked true"),
        MountError::KeyNotAllowed { key: "sharing", .. }
    ));
    assert!(matches!(mount_error("RUN --mount=type=secret,id=a,from=build true"), MountError::FromNotAllowed { .. }));
    assert!(matches!(mount_error("RUN --mount=type=ssh,from=build true"), MountError::FromNotAllowed { .. }));
    assert!(matches!(mount_error("RUN --mount=type=ssh,source=/agent true"), MountError::SshSource));
    assert!(matches!(mount_error("RUN --mount=type=secret,required true"), MountError::SecretWithoutId));
    assert!(matches!(mount_error("RUN --mount=type=secret,id=a,src=b true"), MountError::SecretSourceAndId));
    assert!(matches!(
        mount_error("RUN --mount=type=cache,target=/x,sharing=all true"),
        MountError::InvalidSharing { .. }
    ));
    assert!(matches!(mount_error("RUN --mount=type=cache,target=/x,mode=rwx true"), MountError::InvalidMode { .. }));
    assert!(matches!(mount_error("RUN --mount=type=cache,target=/x,gid=root true"), MountError::InvalidId { .. }));
    assert!(matches!(mount_error("RUN --mount=type=tmpfs,target=/x,size=lots true"), MountError::InvalidSize { .. }));
    assert!(matches!(mount_error("RUN --mount=target=/x,rw=perhaps true"), MountError::InvalidBool { .. }));
    assert!(matches!(mount_error("RUN --mount=target=/x,from=$STAGE true"), MountError::FromExpansion { .. }));
    assert!(matches!(mount_error("RUN --mount=target=/x,source=a\\\"b true"), MountError::Csv(_)));
}

#[test]
fn run_mount_values_with_variables_wait_for_expansion() {
    let Instruction::Run(r) = one("RUN --mount=type=cache,target=$CACHE,mode=$MODE,uid=${UID} true") else { panic!() };
    assert_eq!(r.mounts[0].target.as_deref(), Some("$CACHE"));
    assert_eq!(r.mounts[0].mode, None);
}

#[test]
fn run_device() {
    assert!(matches!(fail_at_3("RUN --device=a,b true"), InstructionError::InvalidDevice { .. }));
    assert!(matches!(fail_at_3("RUN --gpus=all true"), InstructionError::UnknownFlag { instruction: "RUN", .. }));
}

// ---------------------------------------------------------------- CMD / ENTRYPOINT / SHELL

#[test]
fn cmd_entrypoint_shell_positive() {
    let all = commands(
        "FROM alpine\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\nCMD echo hi\nENTRYPOINT [\"/app\"]\nENTRYPOINT []\n\
         SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nCMD []\n",
    );
    assert_eq!(
        all,
        vec![
            Instruction::Cmd { command: ShellOrExec::Exec(strings(&["nginx", "-g", "daemon off;"])) },
            Instruction::Cmd { command: ShellOrExec::Shell("echo hi".into()) },
            Instruction::Entrypoint { command: ShellOrExec::Exec(strings(&["/app"])) },
            Instruction::Entrypoint { command: ShellOrExec::Exec(vec![]) },
            Instruction::Shell { shell: strings(&["/bin/bash", "-o", "pipefail", "-c"]) },
            Instruction::Cmd { command: ShellOrExec::Exec(vec![]) },
        ]
    );
}

#[test]
fn cmd_and_entrypoint_flags() {
    assert!(matches!(fail_at_3("CMD --verbose=1 echo"), InstructionError::UnknownFlag { instruction: "CMD", .. }));
    assert!(matches!(
        fail_at_3("ENTRYPOINT --x=1 /app"),
        InstructionError::UnknownFlag { instruction: "ENTRYPOINT", .. }
    ));
}

#[test]
fn shell_needs_json() {
    let e = fail_at_3("SHELL /bin/bash -c");
    assert!(matches!(e, InstructionError::NotJson { instruction: "SHELL" }), "{e}");
    assert!(matches!(fail_at_3("SHELL []"), InstructionError::MissingArgument { instruction: "SHELL", .. }));
    assert!(matches!(fail_at_3("SHELL"), InstructionError::MissingArgument { instruction: "SHELL", .. }));
}

// ---------------------------------------------------------------- ENV / LABEL / ARG / MAINTAINER

#[test]
fn env_label_positive() {
    let all =
        commands("FROM alpine\nENV A=1 B=\"two words\" C=$A\nENV LEGACY value with spaces\nLABEL org.x=\"y z\" k=v\n");
    assert_eq!(
        all[0],
        Instruction::Env {
            pairs: vec![
                KeyValue { key: "A".into(), value: "1".into(), legacy: false },
                KeyValue { key: "B".into(), value: "\"two words\"".into(), legacy: false },
                KeyValue { key: "C".into(), value: "$A".into(), legacy: false },
            ]
        }
    );
    assert_eq!(
        all[1],
        Instruction::Env {
            pairs: vec![KeyValue { key: "LEGACY".into(), value: "value with spaces".into(), legacy: true }]
        }
    );
    let Instruction::Label { pairs } = &all[2] else { panic!() };
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[0].value, "\"y z\"");
}

#[test]
fn env_errors() {
    assert!(matches!(fail_at_3("ENV"), InstructionError::MissingArgument { instruction: "ENV", .. }));
    assert!(matches!(fail_at_3("ENV =value"), InstructionError::BlankName { instruction: "ENV", .. }));
    assert!(matches!(fail_at_3("ENV --x=1 A=1"), InstructionError::UnknownFlag { .. }));
}

#[test]
fn label_errors() {
    assert!(matches!(fail_at_3("LABEL"), InstructionError::MissingArgument { instruction: "LABEL", .. }));
    assert!(matches!(fail_at_3("LABEL =value"), InstructionError::BlankName { instruction: "LABEL", .. }));
}

#[test]
fn arg_positive_and_errors() {
    let all = commands("FROM alpine\nARG A B=1 C=\"x y\"\n");
    assert_eq!(
        all[0],
        Instruction::Arg {
            args: vec![
                ArgDef { name: "A".into(), default: None },
                ArgDef { name: "B".into(), default: Some("1".into()) },
                ArgDef { name: "C".into(), default: Some("\"x y\"".into()) },
            ]
        }
    );
    assert!(matches!(fail_at_3("ARG"), InstructionError::MissingArgument { instruction: "ARG", .. }));
    assert!(matches!(fail_at_3("ARG =1"), InstructionError::BlankName { instruction: "ARG", .. }));
    assert!(matches!(fail_at_3("ARG --required A"), InstructionError::UnknownFlag { instruction: "ARG", .. }));
}

#[test]
fn maintainer() {
    assert_eq!(
        one("MAINTAINER Jane Doe <jane@example.com>"),
        Instruction::Maintainer { name: "Jane Doe <jane@example.com>".into() }
    );
    assert!(matches!(fail_at_3("MAINTAINER"), InstructionError::ExactlyOneArgument { instruction: "MAINTAINER", .. }));
}

// ---------------------------------------------------------------- COPY / ADD

#[test]
fn copy_positive() {
    let Instruction::Copy(c) = one(
        "COPY --from=build --chown=app:app --chmod=u=rwX,go=rX --link --parents --exclude=*.md --exclude=tests ./a/./b ./c /dst/",
    ) else {
        panic!()
    };
    assert_eq!(
        c,
        CopyInstruction {
            sources: vec![Source::Path("./a/./b".into()), Source::Path("./c".into())],
            dest: "/dst/".into(),
            from: Some("build".into()),
            chown: Some("app:app".into()),
            chmod: Some("u=rwX,go=rX".into()),
            link: true,
            parents: true,
            exclude: strings(&["*.md", "tests"]),
        }
    );
    let Instruction::Copy(c) = one(r#"COPY ["file with space", "/dst dir/"]"#) else { panic!() };
    assert_eq!(c.sources, vec![Source::Path("file with space".into())]);
    assert_eq!(c.dest, "/dst dir/");
    let Instruction::Copy(c) = one("COPY --chmod=755 --link=false <<-EOF /etc/motd\n\thello\n\tEOF") else { panic!() };
    assert_eq!(
        c.sources,
        vec![Source::Heredoc { name: "EOF".into(), content: "hello\n".into(), expand: true, chomp: true }]
    );
    assert_eq!(c.chmod.as_deref(), Some("755"));
    assert!(!c.link);
}

#[test]
fn copy_errors() {
    let e = fail_at_3("COPY onlyone");
    assert!(matches!(e, InstructionError::MissingDestination { instruction: "COPY" }), "{e}");
    assert!(e.to_string().starts_with("COPY requires at least two arguments"));
    assert!(matches!(fail_at_3("COPY"), InstructionError::MissingDestination { .. }));
    let e = fail_at_3("COPY --chmod=8x a b");
    assert_eq!(
        e.to_string(),
        "invalid --chmod value \"8x\": expected an octal mode like 0755 (at most 07777) or a symbolic mode like u+x,go=rX"
    );
    assert!(matches!(fail_at_3("COPY --chmod=17777 a b"), InstructionError::InvalidChmod { .. }));
    assert!(matches!(fail_at_3("COPY --chmod=u+q a b"), InstructionError::InvalidChmod { .. }));
    assert!(matches!(fail_at_3("COPY --checksum=sha256:0 a b"), InstructionError::UnknownFlag { .. }));
    let src = "FROM alpine\n# x\nCOPY a <<EOF\nbody\nEOF\n";
    let (e, start, end) = failure(src);
    assert!(matches!(e, InstructionError::HeredocDestination { instruction: "COPY" }), "{e}");
    assert_eq!((start, end), (3, 5));
}

#[test]
fn add_positive() {
    let Instruction::Add(a) = one(
        "ADD --chown=1000 --chmod=0644 --link --keep-git-dir=true --checksum=sha256:abcd --unpack=false --exclude=x \
         https://example.com/app.tar.gz /opt/",
    ) else {
        panic!()
    };
    assert_eq!(
        a,
        AddInstruction {
            sources: vec![Source::Path("https://example.com/app.tar.gz".into())],
            dest: "/opt/".into(),
            chown: Some("1000".into()),
            chmod: Some("0644".into()),
            link: true,
            keep_git_dir: true,
            checksum: Some("sha256:abcd".into()),
            unpack: Some(false),
            exclude: strings(&["x"]),
        }
    );
    let Instruction::Add(a) = one("ADD src.tar /x") else { panic!() };
    assert_eq!(a.unpack, None);
}

#[test]
fn add_errors() {
    assert!(matches!(fail_at_3("ADD x"), InstructionError::MissingDestination { instruction: "ADD" }));
    assert!(matches!(fail_at_3("ADD --from=build a b"), InstructionError::UnknownFlag { instruction: "ADD", .. }));
    assert!(matches!(fail_at_3("ADD --chmod=abc a b"), InstructionError::InvalidChmod { .. }));
    assert!(matches!(fail_at_3("ADD --unpack=sometimes a b"), InstructionError::InvalidBoolFlag { .. }));
}

// ---------------------------------------------------------------- WORKDIR / USER / STOPSIGNAL

#[test]
fn single_argument_positive() {
    let all = commands("FROM alpine\nWORKDIR /app/$SUB\nUSER app:staff\nSTOPSIGNAL SIGQUIT\n");
    assert_eq!(
        all,
        vec![
            Instruction::Workdir { path: "/app/$SUB".into() },
            Instruction::User { user: "app:staff".into() },
            Instruction::StopSignal { signal: "SIGQUIT".into() },
        ]
    );
}

#[test]
fn single_argument_errors() {
    for kw in ["WORKDIR", "USER", "STOPSIGNAL"] {
        let e = fail_at_3(kw);
        assert!(matches!(e, InstructionError::ExactlyOneArgument { .. }), "{kw}: {e}");
        assert!(e.to_string().starts_with(&format!("{kw} requires exactly one argument")), "{e}");
    }
    assert!(matches!(fail_at_3("STOPSIGNAL --x=1 9"), InstructionError::UnknownFlag { .. }));
}

// ---------------------------------------------------------------- EXPOSE / VOLUME

#[test]
fn expose_positive() {
    assert_eq!(
        one("EXPOSE 80 443/tcp 53/UDP 8000-8010/udp $PORT"),
        Instruction::Expose { ports: strings(&["80", "443/tcp", "53/UDP", "8000-8010/udp", "$PORT"]) }
    );
}

#[test]
fn expose_errors() {
    assert!(matches!(fail_at_3("EXPOSE"), InstructionError::MissingArgument { instruction: "EXPOSE", .. }));
    let e = fail_at_3("EXPOSE 80/http");
    assert!(matches!(e, InstructionError::InvalidPort { .. }), "{e}");
    assert!(e.to_string().contains("invalid protocol \"http\""), "{e}");
    assert!(matches!(fail_at_3("EXPOSE 65536"), InstructionError::InvalidPort { .. }));
    assert!(matches!(fail_at_3("EXPOSE 9000-8000"), InstructionError::InvalidPort { .. }));
    assert!(matches!(fail_at_3("EXPOSE http"), InstructionError::InvalidPort { .. }));
}

#[test]
fn volume_positive_and_errors() {
    assert_eq!(one("VOLUME /data /logs"), Instruction::Volume { paths: strings(&["/data", "/logs"]) });
    assert_eq!(one(r#"VOLUME ["/var/lib/my data"]"#), Instruction::Volume { paths: strings(&["/var/lib/my data"]) });
    assert!(matches!(fail_at_3("VOLUME"), InstructionError::MissingArgument { instruction: "VOLUME", .. }));
    assert!(matches!(fail_at_3(r#"VOLUME ["/a", " "]"#), InstructionError::EmptyVolume));
}

// ---------------------------------------------------------------- HEALTHCHECK

#[test]
fn healthcheck_positive() {
    let all = commands(
        "FROM alpine\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s \
         --start-interval=250ms --retries=4 CMD curl -f http://localhost/ || exit 1\n\
         HEALTHCHECK --interval=0 CMD [\"/bin/check\", \"--quick\"]\n",
    );
    assert_eq!(all[0], Instruction::Healthcheck(Healthcheck::None));
    assert_eq!(
        all[1],
        Instruction::Healthcheck(Healthcheck::Check {
            test: ShellOrExec::Shell("curl -f http://localhost/ || exit 1".into()),
            interval: Some(Duration::from_secs(300)),
            timeout: Some(Duration::from_secs(3)),
            start_period: Some(Duration::from_secs(90)),
            start_interval: Some(Duration::from_millis(250)),
            retries: Some(4),
        })
    );
    assert_eq!(all[1].healthcheck_test(), Some(strings(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"])));
    assert_eq!(all[2].healthcheck_test(), Some(strings(&["CMD", "/bin/check", "--quick"])));
    let Instruction::Healthcheck(Healthcheck::Check { interval, .. }) = &all[2] else { panic!() };
    assert_eq!(*interval, None);
}

#[test]
fn healthcheck_errors() {
    use InstructionError as E;
    assert!(matches!(fail_at_3("HEALTHCHECK"), E::MissingArgument { instruction: "HEALTHCHECK", .. }));
    assert!(matches!(fail_at_3("HEALTHCHECK NONE now"), E::HealthcheckNoneArguments));
    assert!(matches!(fail_at_3("HEALTHCHECK --retries=3 NONE"), E::HealthcheckNoneFlags { .. }));
    let e = fail_at_3("HEALTHCHECK PING localhost");
    assert_eq!(e.to_string(), "unknown type \"PING\" in HEALTHCHECK: expected CMD or NONE");
    assert!(matches!(fail_at_3("HEALTHCHECK CMD"), E::HealthcheckMissingCommand));
    assert!(matches!(fail_at_3("HEALTHCHECK CMD []"), E::HealthcheckMissingCommand));
    let e = fail_at_3("HEALTHCHECK --interval=10 CMD true");
    assert!(matches!(e, E::InvalidDuration { flag: "interval", .. }), "{e}");
    assert!(matches!(fail_at_3("HEALTHCHECK --timeout=1d CMD true"), E::InvalidDuration { flag: "timeout", .. }));
    let e = fail_at_3("HEALTHCHECK --start-period=100us CMD true");
    assert!(matches!(e, E::DurationTooShort { flag: "start-period", .. }), "{e}");
    assert!(matches!(fail_at_3("HEALTHCHECK --start-interval=-5s CMD true"), E::DurationTooShort { .. }));
    assert!(matches!(fail_at_3("HEALTHCHECK --retries=-1 CMD true"), E::NegativeRetries { value: -1 }));
    assert!(matches!(fail_at_3("HEALTHCHECK --retries=many CMD true"), E::InvalidRetries { .. }));
    assert!(matches!(fail_at_3("HEALTHCHECK --period=5s CMD true"), E::UnknownFlag { instruction: "HEALTHCHECK", .. }));
}

// ---------------------------------------------------------------- ONBUILD

#[test]
fn onbuild_positive() {
    let all = commands(
        "FROM alpine\nONBUILD COPY --from=builder . /src\nonbuild   RUN --mount=type=cache,target=/c make\n\
         ONBUILD RUN <<EOF\necho hi\nEOF\n",
    );
    let Instruction::Onbuild { trigger, expression } = &all[0] else { panic!() };
    assert_eq!(expression, "COPY --from=builder . /src");
    assert_eq!(trigger.stage_references(), vec!["builder"]);
    // Triggers run downstream: the ONBUILD itself references nothing here.
    assert!(all[0].stage_references().is_empty());
    let Instruction::Onbuild { trigger, expression } = &all[1] else { panic!() };
    assert_eq!(expression, "RUN --mount=type=cache,target=/c make");
    assert!(matches!(**trigger, Instruction::Run(_)));
    let Instruction::Onbuild { trigger, expression } = &all[2] else { panic!() };
    assert_eq!(expression, "RUN <<EOF\necho hi\nEOF");
    let Instruction::Run(r) = &**trigger else { panic!() };
    assert_eq!(r.heredocs[0].content, "echo hi\n");
}

#[test]
fn onbuild_errors() {
    use InstructionError as E;
    assert!(matches!(fail_at_3("ONBUILD"), E::MissingArgument { instruction: "ONBUILD", .. }));
    let e = fail_at_3("ONBUILD ONBUILD RUN true");
    assert_eq!(e.to_string(), "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    assert!(matches!(fail_at_3("ONBUILD FROM alpine"), E::OnbuildTrigger { ref trigger } if trigger == "FROM"));
    assert!(matches!(fail_at_3("ONBUILD maintainer me"), E::OnbuildTrigger { ref trigger } if trigger == "MAINTAINER"));
    // The trigger itself is validated.
    assert!(matches!(fail_at_3("ONBUILD COPY onlyone"), E::MissingDestination { .. }));
    assert!(matches!(fail_at_3("ONBUILD COPY --bogus=1 a b"), E::UnknownFlag { instruction: "COPY", .. }));
    assert!(matches!(fail_at_3("ONBUILD RUNN make"), E::UnknownInstruction { .. }));
}

// ---------------------------------------------------------------- whole files

#[test]
fn multi_stage_file() {
    let src = "\
# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG APP=server

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \\
    CGO_ENABLED=0 go build -o /out/${APP} ./cmd/${APP}

FROM gcr.io/distroless/static AS final
ARG APP
COPY --from=build /out/${APP} /app
USER 65532:65532
EXPOSE 8080/tcp
HEALTHCHECK --interval=30s CMD [\"/app\", \"-health\"]
ENTRYPOINT [\"/app\"]
";
    let parsed = stages(src);
    assert_eq!(parsed.meta_args.len(), 2);
    assert_eq!(parsed.stages.len(), 2);
    let build = &parsed.stages[0];
    assert_eq!(build.name.as_deref(), Some("build"));
    assert_eq!(build.commands.len(), 5);
    let last_run = &build.commands[4];
    assert_eq!((last_run.start_line, last_run.end_line), (10, 11));
    assert_eq!(last_run.keyword_original, "RUN");
    let final_stage = &parsed.stages[1];
    assert_eq!(final_stage.commands.len(), 6);
    let refs: Vec<&str> = final_stage.commands.iter().flat_map(|c| c.instruction.stage_references()).collect();
    assert_eq!(refs, vec!["build"]);
    let keywords: Vec<&str> = final_stage.commands.iter().map(|c| c.instruction.keyword()).collect();
    assert_eq!(keywords, vec!["ARG", "COPY", "USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT"]);
    // Plans are printed as JSON.
    let json = serde_json::to_string(&parsed).unwrap();
    assert!(json.contains("\"meta_args\""));
}

#[test]
fn conformance_corpus_parses_into_stages() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/buildkit-parser");
    let Ok(dir) = std::fs::read_dir(&root) else {
        eprintln!("conformance corpus not found at {}; skipping", root.display());
        return;
    };
    let mut checked = 0;
    for entry in dir.flatten() {
        let Ok(text) = std::fs::read(entry.path().join("Dockerfile")) else {
            continue;
        };
        let Ok(ast) = distill_dockerfile::parse(&text) else {
            continue;
        };
        // Must not panic; errors are allowed (the corpus has odd flags and keywords).
        let _ = parse_stages(&ast);
        checked += 1;
    }
    assert!(checked > 20, "only {checked} cases");
}

// ---------------------------------------------------------------- robustness

fn next(seed: &mut u64) -> u64 {
    // xorshift64*
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn pick<'a>(seed: &mut u64, items: &[&'a str]) -> &'a str {
    items[(next(seed) % items.len() as u64) as usize]
}

#[test]
fn never_panics_on_odd_input() {
    let keywords: Vec<&str> = "FROM|RUN|COPY|ADD|HEALTHCHECK|ONBUILD|EXPOSE|ENV|LABEL|ARG|SHELL|VOLUME|WORKDIR|USER|\
        STOPSIGNAL|MAINTAINER|CMD|ENTRYPOINT|ONBUILD COPY|ONBUILD RUN|ONBUILD ADD|HEALTHCHECK CMD"
        .split('|')
        .collect();
    let pieces: Vec<&str> = "AS|CMD|NONE|--mount=|--chmod=|--from=|--link|--interval=|--retries=|--network=|\
        --device=|--exclude=|type=|target=|from=$|size=|mode=|uid=|secret|ssh|cache|tmpfs|µ|é|\"|'|\\|$|${|<<|<<-E|\
        =|,|-|0|99999999999999999999|[|]|[\"a\"]|1.5µs|/|:|--|80/udp|u+x|\t| | | "
        .split('|')
        .collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut parsed_ok = 0;
    for _ in 0..10_000 {
        let mut src = format!("FROM a\n{} ", pick(&mut seed, &keywords));
        for _ in 0..(next(&mut seed) % 10) {
            src.push_str(pick(&mut seed, &pieces));
            if next(&mut seed).is_multiple_of(3) {
                src.push(' ');
            }
        }
        src.push('\n');
        if src.contains("<<") {
            src.push_str("E\n");
        }
        let Ok(ast) = distill_dockerfile::parse(src.as_bytes()) else {
            continue;
        };
        let Ok(parsed) = parse_stages(&ast) else {
            continue;
        };
        parsed_ok += 1;
        for command in parsed.stages.iter().flat_map(|s| &s.commands) {
            let instruction = &command.instruction;
            let _ = instruction.keyword();
            let _ = instruction.stage_references();
            let _ = instruction.healthcheck_test();
            let _ = instruction.validate();
            let mut ex = |w: &str| Ok(w.replace('$', ""));
            if let Ok(expanded) = instruction.expand(&mut ex) {
                let _ = expanded.validate();
            }
            let _ = serde_json::to_string(instruction);
        }
    }
    assert!(parsed_ok > 1_000, "only {parsed_ok} inputs produced stages");
}
