//! Stage planning: ARG scoping, expansion, stage references, targets, pruning
//! and the build checks that depend on them.

use distill_dockerfile::ErrorKind;
use distill_dockerfile::instructions::Instruction;
use distill_dockerfile::lint::Rule;
use distill_dockerfile::plan::{Base, BuildPlan, PlanErrorKind, PlanOptions, Platform, plan_dockerfile};

fn opts() -> PlanOptions {
    PlanOptions {
        target_platform: Platform::parse("linux/arm64").unwrap(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        ..PlanOptions::default()
    }
}

fn plan(src: &str) -> BuildPlan {
    plan_with(src, opts())
}

fn plan_with(src: &str, options: PlanOptions) -> BuildPlan {
    plan_dockerfile(src.as_bytes(), &options).unwrap_or_else(|e| panic!("plan failed at line {}: {e}", e.line))
}

fn plan_err(src: &str, options: PlanOptions) -> distill_dockerfile::Error {
    plan_dockerfile(src.as_bytes(), &options).expect_err("plan must fail")
}

fn texts(plan: &BuildPlan, stage: usize) -> Vec<String> {
    plan.stages[stage].instructions.iter().map(|i| i.text()).collect()
}

fn rules(plan: &BuildPlan) -> Vec<(Rule, usize)> {
    plan.warnings.iter().map(|w| (w.rule, w.line)).collect()
}

#[test]
fn global_args_are_visible_in_from_only() {
    let p = plan("ARG IMG=debian\nARG TAG=12\nFROM ${IMG}:${TAG}\nENV X=${TAG}-x\n");
    assert_eq!(p.stages[0].base, Base::Image("debian:12".into()));
    // The global TAG is not in scope inside the stage without a re-declaration.
    assert_eq!(texts(&p, 0), vec!["ENV X=-x"]);
}

#[test]
fn redeclared_global_arg_imports_its_value() {
    let p = plan("ARG TAG=12\nFROM debian\nARG TAG\nENV X=${TAG}\n");
    assert_eq!(texts(&p, 0)[1], "ENV X=12");
}

#[test]
fn build_arg_overrides_defaults_everywhere() {
    let mut o = opts();
    o.build_args.insert("TAG".into(), "13".into());
    let p = plan_with("ARG TAG=12\nFROM debian:${TAG}\nARG TAG=11\nLABEL t=$TAG\n", o);
    assert_eq!(p.stages[0].base, Base::Image("debian:13".into()));
    assert_eq!(texts(&p, 0)[1], "LABEL t=13");
    assert!(p.unused_build_args.is_empty());
}

#[test]
fn undeclared_build_args_are_reported_unused_but_proxies_are_not() {
    let mut o = opts();
    o.build_args.insert("NOPE".into(), "1".into());
    o.build_args.insert("HTTP_PROXY".into(), "http://proxy:3128".into());
    let p = plan_with("FROM scratch\nRUN true\n", o);
    assert_eq!(p.unused_build_args, vec!["NOPE"]);
    // Proxy args reach RUN without a declaration.
    let run = &p.stages[0].instructions[0];
    assert!(run.args.contains(&("HTTP_PROXY".to_string(), "http://proxy:3128".to_string())));
}

#[test]
fn env_wins_over_arg_and_snapshot_is_per_instruction() {
    let p = plan("FROM scratch\nENV A=env\nARG A=arg\nLABEL a=$A\nENV B=1 C=$B\nENV B=2 D=$B\n");
    let t = texts(&p, 0);
    assert_eq!(t[2], "LABEL a=env");
    // One substitution snapshot per instruction: C sees no B, D sees the old B.
    assert_eq!(t[3], "ENV B=1 C=\"\"");
    assert_eq!(t[4], "ENV B=2 D=1");
}

#[test]
fn arg_default_uses_earlier_args_and_is_scoped_to_its_stage() {
    let p = plan("FROM scratch AS a\nARG V=1\nARG W=${V}.0\nLABEL w=$W\nFROM scratch\nLABEL w=x$W\n");
    assert_eq!(texts(&p, 0)[2], "LABEL w=1.0");
    assert_eq!(texts(&p, 1)[0], "LABEL w=x");
}

#[test]
fn stage_args_and_env_are_inherited_by_child_stages() {
    let p = plan("FROM scratch AS a\nARG V=1\nENV E=2\nWORKDIR /app\nFROM a\nLABEL v=$V e=$E\nWORKDIR sub\n");
    assert_eq!(p.stages[1].base, Base::Stage(0));
    assert_eq!(texts(&p, 1)[0], "LABEL v=1 e=2");
    assert_eq!(p.stages[1].instructions[1].workdir.as_deref(), Some("/app"));
    assert!(!rules(&p).iter().any(|(r, _)| *r == Rule::WorkdirRelativePath));
}

#[test]
fn automatic_platform_args() {
    let p = plan(
        "FROM --platform=$BUILDPLATFORM scratch AS b\nARG TARGETARCH\nARG BUILDOS\nLABEL a=$TARGETARCH o=$BUILDOS p=$TARGETPLATFORM\n",
    );
    assert_eq!(p.stages[0].platform.as_deref(), Some("linux/amd64"));
    // TARGETPLATFORM was not declared in the stage: it expands to "".
    assert_eq!(texts(&p, 0)[2], "LABEL a=arm64 o=linux p=\"\"");
    let ts = p.global_args.iter().find(|(k, _)| k == "TARGETSTAGE").unwrap();
    assert_eq!(ts.1.as_deref(), Some("b"));
}

#[test]
fn stage_references_by_name_index_and_mount() {
    let src = "FROM scratch AS Base\nFROM scratch AS tools\nFROM scratch\nCOPY --from=BASE /a /a\nCOPY --from=1 /b /b\nRUN --mount=type=bind,from=tools,target=/t true\nCOPY --from=alpine:3 /c /c\n";
    let p = plan(src);
    assert_eq!(p.stages[2].dependencies, vec![0, 1]);
    assert_eq!(p.stages[2].external_images, vec!["alpine:3"]);
    assert!(p.stages.iter().all(|s| !s.pruned));
    assert_eq!(p.build_order(), vec![0, 1, 2]);
}

#[test]
fn target_prunes_unreachable_stages() {
    let src = "FROM scratch AS a\nFROM scratch AS b\nCOPY --from=a /x /x\nFROM scratch AS c\nFROM b AS d\n";
    let mut o = opts();
    o.target = Some("D".into());
    let p = plan_with(src, o);
    assert_eq!(p.target, 3);
    let pruned: Vec<bool> = p.stages.iter().map(|s| s.pruned).collect();
    assert_eq!(pruned, vec![false, false, true, false]);
    assert_eq!(p.build_order(), vec![0, 1, 3]);
    // Default target: the last stage.
    let p = plan(src);
    assert_eq!(p.target, 3);
    let mut o = opts();
    o.target = Some("c".into());
    let p = plan_with(src, o);
    assert_eq!(p.build_order(), vec![2]);
}

#[test]
fn unknown_target_suggests_a_stage() {
    let mut o = opts();
    o.target = Some("buld".into());
    let e = plan_err("FROM scratch AS build\n", o);
    assert_eq!(
        e.kind,
        ErrorKind::Plan(PlanErrorKind::UnknownTarget { target: "buld".into(), suggestion: Some("build".into()) })
    );
    assert!(e.to_string().contains("did you mean build?"));
}

#[test]
fn cycles_and_bad_indexes_are_errors() {
    let e = plan_err("FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /x /x\n", opts());
    assert!(matches!(e.kind, ErrorKind::Plan(PlanErrorKind::CircularDependency(_))), "{e}");
    let e = plan_err("FROM scratch AS a\nCOPY --from=a /x /x\n", opts());
    assert!(matches!(e.kind, ErrorKind::Plan(PlanErrorKind::CircularDependency(ref s)) if s == "a"), "{e}");
    let e = plan_err("FROM scratch\nCOPY --from=5 /x /x\n", opts());
    assert_eq!(e.kind, ErrorKind::Plan(PlanErrorKind::InvalidStageIndex { index: 5, count: 1 }));
    assert_eq!(e.line, 2);
}

#[test]
fn from_later_stage_name_is_an_image() {
    // FROM may only name earlier stages; a later name is an image reference.
    let p = plan("FROM later AS a\nFROM scratch AS later\n");
    assert_eq!(p.stages[0].base, Base::Image("later".into()));
}

#[test]
fn blank_base_and_bad_platform_are_errors() {
    let e = plan_err("ARG X\nFROM ${X}\n", opts());
    assert_eq!(e.kind, ErrorKind::Plan(PlanErrorKind::BlankBaseName("${X}".into())));
    assert_eq!(e.line, 2);
    let e = plan_err("FROM --platform=a/b/c/d scratch\n", opts());
    assert!(matches!(e.kind, ErrorKind::Plan(PlanErrorKind::InvalidPlatform { .. })), "{e}");
}

#[test]
fn shell_errors_point_at_the_instruction() {
    let e = plan_err("FROM scratch\n\nLABEL a=${X:?required}\n", opts());
    assert!(matches!(e.kind, ErrorKind::Shell(_)), "{e}");
    assert_eq!(e.line, 3);
    assert!(e.to_string().contains("required"), "{e}");
}

#[test]
fn expansion_applies_to_exactly_the_right_fields() {
    let src = "FROM scratch\nARG D=/dst U=1000 M=755 P=8080\nCOPY --chown=$U:$U --chmod=$M --from=x$D a$D $D/\nRUN echo $D\nCMD echo $D\nWORKDIR $D\nEXPOSE $P/udp\nUSER $U\nVOLUME $D\nSTOPSIGNAL SIG$U\n";
    let p = plan(src);
    let t = texts(&p, 0);
    assert_eq!(t[1], "COPY --from=x$D --chown=1000:1000 --chmod=755 a/dst /dst/");
    assert_eq!(t[2], "RUN echo $D");
    assert_eq!(t[3], "CMD echo $D");
    assert_eq!(t[4], "WORKDIR /dst");
    assert_eq!(t[5], "EXPOSE 8080/udp");
    assert_eq!(t[6], "USER 1000");
    assert_eq!(t[7], "VOLUME [\"/dst\"]");
    assert_eq!(t[8], "STOPSIGNAL SIG1000");
    assert!(
        matches!(&p.stages[0].instructions[1].instruction, Instruction::Copy(c) if c.from.as_deref() == Some("x$D"))
    );
}

#[test]
fn workdir_resolution() {
    let p = plan("FROM scratch\nWORKDIR /a\nWORKDIR b/../c\nWORKDIR /d\nRUN pwd\n");
    let wd: Vec<_> = p.stages[0].instructions.iter().map(|i| i.workdir.clone()).collect();
    assert_eq!(wd, vec![Some("/".into()), Some("/a".into()), Some("/a/c".into()), Some("/d".into())]);
}

#[test]
fn checks_that_need_expansion() {
    let src = "ARG BASE=debian\nFROM ${BASE} AS build\nFROM ${NOPE:-scratch}\nENV A=$UNDEFINED_ONE\nWORKDIR rel\nENV VERSON=1\nLABEL v=$VERSION\n";
    let p = plan(src);
    let r = rules(&p);
    assert!(r.contains(&(Rule::UndefinedArgInFrom, 3)), "{r:?}");
    assert!(r.contains(&(Rule::UndefinedVar, 4)), "{r:?}");
    assert!(r.contains(&(Rule::WorkdirRelativePath, 5)), "{r:?}");
    let did_you_mean = p.warnings.iter().find(|w| w.line == 7).expect("UndefinedVar on line 7");
    assert!(did_you_mean.message.contains("did you mean $VERSON?"), "{}", did_you_mean.message);
}

#[test]
fn undefined_var_is_not_reported_when_the_base_image_env_is_unknown() {
    let p = plan("FROM python:3.12\nENV X=$PYTHON_VERSION\n");
    assert!(!rules(&p).iter().any(|(r, _)| *r == Rule::UndefinedVar));
    let mut o = opts();
    o.image_env.insert("python:3.12".into(), vec!["PYTHON_VERSION=3.12.1".into()]);
    let p = plan_with("FROM python:3.12\nENV X=$PYTHON_VERSION Y=$MISSING\n", o);
    assert_eq!(texts(&p, 0)[0], "ENV X=3.12.1 Y=\"\"");
    let undefined: Vec<_> = p.warnings.iter().filter(|w| w.rule == Rule::UndefinedVar).collect();
    assert_eq!(undefined.len(), 1);
    assert!(undefined[0].message.contains("$MISSING"));
}

#[test]
fn stage_name_checks() {
    let p = plan("FROM scratch as Build\nFROM scratch AS build\nFROM scratch AS scratch\n");
    let r = rules(&p);
    assert!(r.contains(&(Rule::FromAsCasing, 1)), "{r:?}");
    assert!(r.contains(&(Rule::StageNameCasing, 1)), "{r:?}");
    assert!(r.contains(&(Rule::DuplicateStageName, 2)), "{r:?}");
    assert!(r.contains(&(Rule::ReservedStageName, 3)), "{r:?}");
}

#[test]
fn syntax_only_checks() {
    let p = plan("FROM scratch\nMAINTAINER me\nENV A b\nLABEL x y\nCMD echo\nENTRYPOINT run\nrun true\n");
    let r = rules(&p);
    for expected in [
        (Rule::MaintainerDeprecated, 2),
        (Rule::LegacyKeyValueFormat, 3),
        (Rule::LegacyKeyValueFormat, 4),
        (Rule::JSONArgsRecommended, 5),
        (Rule::JSONArgsRecommended, 6),
        (Rule::ConsistentInstructionCasing, 7),
    ] {
        assert!(r.contains(&expected), "{expected:?} missing from {r:?}");
    }
}

#[test]
fn secrets_platform_and_expose_checks() {
    let src = "ARG GITHUB_TOKEN\nFROM --platform=$TARGETPLATFORM scratch AS a\nENV DB_PASSWORD=x\nEXPOSE 80/TCP 1.2.3.4:80:80\nCMD [\"a\"]\nCMD [\"b\"]\nFROM --platform=linux/amd64 scratch\n";
    let p = plan_with(src, PlanOptions { all_stages: true, ..opts() });
    let r = rules(&p);
    for expected in [
        (Rule::SecretsUsedInArgOrEnv, 1),
        (Rule::RedundantTargetPlatform, 2),
        (Rule::SecretsUsedInArgOrEnv, 3),
        (Rule::ExposeProtoCasing, 4),
        (Rule::ExposeInvalidFormat, 4),
        (Rule::MultipleInstructionsDisallowed, 6),
        (Rule::FromPlatformFlagConstDisallowed, 7),
    ] {
        assert!(r.contains(&expected), "{expected:?} missing from {r:?}");
    }
}

#[test]
fn invalid_default_arg_in_from() {
    let p = plan("ARG TAG\nFROM debian:${TAG}\n");
    assert!(rules(&p).contains(&(Rule::InvalidDefaultArgInFrom, 2)), "{:?}", rules(&p));
    let p = plan("ARG TAG=12\nFROM debian:${TAG}\n");
    assert!(!rules(&p).iter().any(|(r, _)| *r == Rule::InvalidDefaultArgInFrom));
}

#[test]
fn check_directive_skips_and_errors() {
    let p = plan("# check=skip=MaintainerDeprecated\nFROM scratch\nMAINTAINER me\nENV A b\n");
    assert_eq!(rules(&p), vec![(Rule::LegacyKeyValueFormat, 4)]);
    assert!(p.check_error().is_none());
    let p = plan("# check=error=true\nFROM scratch\nMAINTAINER me\n");
    let e = p.check_error().expect("error=true turns findings into an error");
    assert_eq!(e.line, 3);
    let p = plan("# check=skip=all;error=true\nFROM scratch\nMAINTAINER me\n");
    assert!(p.warnings.is_empty() && p.check_error().is_none());
    // The build arg overrides the directive.
    let mut o = opts();
    o.build_args.insert("BUILDKIT_DOCKERFILE_CHECK".into(), "skip=all".into());
    assert!(plan_with("# check=error=true\nFROM scratch\nMAINTAINER me\n", o).warnings.is_empty());
    let e = plan_err("# check=bogus=1\nFROM scratch\n", opts());
    assert_eq!(e.line, 1);
}

#[test]
fn unreachable_stages_are_only_linted_with_all_stages() {
    let src = "FROM scratch AS unused\nMAINTAINER me\nLABEL a=${X:?boom}\nWORKDIR rel\nFROM scratch\n";
    let p = plan(src);
    assert!(p.stages[0].pruned);
    // Syntax-level checks cover every stage (BuildKit runs them while parsing);
    // checks that need expansion only cover the stages that are built.
    assert_eq!(rules(&p), vec![(Rule::MaintainerDeprecated, 2)]);
    // Shown, unexpanded, because expanding it fails.
    assert_eq!(texts(&p, 0).len(), 3);
    let o = PlanOptions { all_stages: true, ..opts() };
    assert!(plan_dockerfile(src.as_bytes(), &o).is_err());
}

#[test]
fn platform_parsing() {
    assert_eq!(Platform::parse("linux/amd64").unwrap().to_string(), "linux/amd64");
    assert_eq!(Platform::parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
    assert_eq!(Platform::parse("linux/arm").unwrap().to_string(), "linux/arm/v7");
    assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
    assert!(Platform::parse("linux//amd64").is_err());
    assert!(Platform::parse("").is_err());
}

#[test]
fn build_arg_specs() {
    let mut o = PlanOptions::default();
    o.add_build_arg("A=1=2", |_| None).unwrap();
    o.add_build_arg("B", |k| (k == "B").then(|| "from-env".to_string())).unwrap();
    o.add_build_arg("C", |_| None).unwrap();
    assert_eq!(o.build_args.get("A").map(String::as_str), Some("1=2"));
    assert_eq!(o.build_args.get("B").map(String::as_str), Some("from-env"));
    assert!(!o.build_args.contains_key("C"));
    assert!(o.add_build_arg("=x", |_| None).is_err());
}

#[test]
fn conformance_dockerfiles_plan_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/buildkit-parser");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries.flatten() {
        let Ok(bytes) = std::fs::read(entry.path().join("Dockerfile")) else { continue };
        let o = PlanOptions { all_stages: true, ..opts() };
        let _ = plan_dockerfile(&bytes, &o);
    }
}

#[test]
fn base_image_triggers_come_first_and_add_dependencies() {
    let mut o = opts();
    o.image_onbuild
        .insert("base".into(), vec!["COPY --from=helper /x /x".into(), "RUN echo $V".into(), "ENV W=$V".into()]);
    o.image_env.insert("base".into(), vec!["V=1".into()]);
    let p = plan_with("FROM scratch AS helper\n\nFROM base\nLABEL a=b\n", o);
    assert!(!p.stages[0].pruned, "a trigger's COPY --from reaches its stage");
    assert_eq!(p.stages[1].dependencies, vec![0]);
    assert_eq!(texts(&p, 1), vec!["COPY --from=helper /x /x", "RUN echo $V", "ENV W=1", "LABEL a=b"]);
    let origins: Vec<Option<&str>> = p.stages[1].instructions.iter().map(|i| i.onbuild.as_deref()).collect();
    assert_eq!(origins, vec![Some("base image base"); 3].into_iter().chain([None]).collect::<Vec<_>>());
    // Triggers sit at the FROM's lines, as in BuildKit.
    assert_eq!((p.stages[1].instructions[0].start_line, p.stages[1].instructions[3].start_line), (3, 4));
}

#[test]
fn a_base_stage_onbuild_instructions_run_in_its_children() {
    let p = plan("FROM scratch AS parent\nONBUILD COPY a /a\n\nFROM parent\nCOPY b /b\n");
    assert_eq!(texts(&p, 0), vec!["ONBUILD COPY a /a"]);
    assert_eq!(texts(&p, 1), vec!["COPY a /a", "COPY b /b"]);
    assert_eq!(p.stages[1].instructions[0].onbuild.as_deref(), Some("stage parent"));
}

#[test]
fn bad_triggers_name_their_origin() {
    for trigger in ["FROM x", "ONBUILD RUN x", "MAINTAINER me", "RUN a\nRUN b", "COPY --nope a b"] {
        let mut o = opts();
        o.image_onbuild.insert("base".into(), vec![trigger.into()]);
        let err = plan_err("FROM base\n", o);
        assert!(
            matches!(&err.kind, ErrorKind::Plan(PlanErrorKind::OnbuildTrigger { origin, .. }) if origin == "base image base"),
            "{trigger:?}: {err}"
        );
        assert!(err.to_string().starts_with("ONBUILD trigger from base image base: "), "{err}");
        assert_eq!(err.line, 1);
    }
}

#[test]
fn a_named_context_replaces_the_stage_of_its_name() {
    let mut o = opts();
    o.named_contexts.insert("helper".into());
    let p = plan_with("FROM debian AS helper\nCOPY --from=other / /\n\nFROM scratch AS other\n\nFROM helper\n", o);
    assert_eq!(p.stages[0].base, Base::Context("helper".into()));
    assert!(p.stages[0].instructions.is_empty() && p.stages[0].dependencies.is_empty());
    assert!(p.stages[1].pruned, "what the replaced stage read is not built");
    assert_eq!(p.stages[2].base, Base::Stage(0));
}

#[test]
fn heredoc_triggers_keep_their_bodies() {
    use distill_dockerfile::instructions::Source;
    let p = plan("FROM scratch AS p\nONBUILD COPY <<EOF /f\nhi there\nEOF\n\nFROM p\n");
    let Instruction::Copy(copy) = &p.stages[1].instructions[0].instruction else { panic!("{:?}", texts(&p, 1)) };
    assert!(
        matches!(&copy.sources[..], [Source::Heredoc { content, .. }] if content == "hi there\n"),
        "{:?}",
        copy.sources
    );
}
