//! How instructions change the image config, with Docker's rules: ENV
//! replaces or appends, ENTRYPOINT resets an inherited CMD, shell forms go
//! through SHELL, EXPOSE ranges become single ports, HEALTHCHECK durations
//! are nanoseconds. Also the history lines (`created_by`) BuildKit writes.

use std::collections::BTreeMap;

use distill_dockerfile::instructions::{Healthcheck, Instruction, ShellOrExec, parse_port_spec};
use distill_dockerfile::plan::DEFAULT_PATH;
use distill_image::config::{ContainerConfig, Healthcheck as ConfigHealthcheck, ImageConfig};
use serde_json::Value;

/// The shell of shell-form commands when SHELL was never used.
pub(crate) const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

pub(crate) fn container(config: &mut ImageConfig) -> &mut ContainerConfig {
    config.config.get_or_insert_with(ContainerConfig::default)
}

/// `KEY=VALUE` lines as pairs (a line without `=` is a name with an empty value).
pub(crate) fn env_pairs(cc: Option<&ContainerConfig>) -> Vec<(String, String)> {
    cc.and_then(|c| c.env.as_ref())
        .map(|env| {
            env.iter()
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (e.clone(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `key` in the environment, in place when present (Docker keeps the order).
pub(crate) fn set_env(cc: &mut ContainerConfig, key: &str, value: &str) {
    let env = cc.env.get_or_insert_with(Vec::new);
    let line = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
        Some(existing) => *existing = line,
        None => env.push(line),
    }
}

/// The config of a stage built `FROM scratch`: BuildKit gives it the default PATH.
pub(crate) fn scratch_config(os: &str, architecture: &str, variant: Option<&str>) -> ImageConfig {
    let mut config = ImageConfig {
        os: os.to_string(),
        architecture: architecture.to_string(),
        variant: variant.map(str::to_string),
        ..ImageConfig::default()
    };
    container(&mut config).env = Some(vec![format!("PATH={DEFAULT_PATH}")]);
    config
}

/// argv of a command: exec form as is, shell form through the stage's SHELL.
pub(crate) fn command_argv(cc: Option<&ContainerConfig>, command: &ShellOrExec) -> Vec<String> {
    match command {
        ShellOrExec::Exec(args) => args.clone(),
        ShellOrExec::Shell(script) => {
            let mut argv = shell(cc);
            argv.push(script.clone());
            argv
        }
    }
}

pub(crate) fn shell(cc: Option<&ContainerConfig>) -> Vec<String> {
    cc.and_then(|c| c.shell.clone()).unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
}

/// Applies an instruction that only changes the config. Returns false for
/// instructions that are not of that kind (RUN, COPY, ADD, WORKDIR, FROM).
/// `cmd_set` tracks whether CMD was set in this stage (ENTRYPOINT keeps it then).
pub(crate) fn apply_metadata(config: &mut ImageConfig, instruction: &Instruction, cmd_set: &mut bool) -> bool {
    match instruction {
        Instruction::Env { pairs } => {
            let cc = container(config);
            for kv in pairs {
                set_env(cc, &kv.key, &kv.value);
            }
        }
        Instruction::Label { pairs } => {
            let labels = container(config).labels.get_or_insert_with(BTreeMap::new);
            for kv in pairs {
                labels.insert(kv.key.clone(), kv.value.clone());
            }
        }
        Instruction::Arg { .. } => {}
        Instruction::User { user } => container(config).user = Some(user.clone()),
        Instruction::Expose { ports } => {
            let exposed = container(config).exposed_ports.get_or_insert_with(BTreeMap::new);
            for spec in ports.iter().flat_map(|p| p.split_whitespace()) {
                // Validated by planning; a spec that still fails is skipped.
                for (start, end, proto) in parse_port_spec(spec).unwrap_or_default() {
                    for port in start..=end {
                        exposed.insert(format!("{port}/{proto}"), Value::Object(Default::default()));
                    }
                }
            }
        }
        Instruction::Volume { paths } => {
            let volumes = container(config).volumes.get_or_insert_with(BTreeMap::new);
            for path in paths {
                volumes.insert(path.clone(), Value::Object(Default::default()));
            }
        }
        Instruction::StopSignal { signal } => container(config).stop_signal = Some(signal.clone()),
        Instruction::Healthcheck(check) => container(config).healthcheck = Some(healthcheck(check)),
        Instruction::Onbuild { expression, .. } => {
            container(config).on_build.get_or_insert_with(Vec::new).push(expression.clone())
        }
        Instruction::Maintainer { name } => config.author = Some(name.clone()),
        Instruction::Shell { shell } => container(config).shell = Some(shell.clone()),
        Instruction::Cmd { command } => {
            let argv = command_argv(config.config.as_ref(), command);
            let cc = container(config);
            cc.cmd = Some(argv);
            *cmd_set = true;
        }
        Instruction::Entrypoint { command } => {
            let argv = command_argv(config.config.as_ref(), command);
            let cc = container(config);
            cc.entrypoint = Some(argv);
            // "If CMD is defined from the base image, setting ENTRYPOINT will
            // reset CMD to an empty value." (Dockerfile reference)
            if !*cmd_set {
                cc.cmd = None;
            }
        }
        Instruction::From(_)
        | Instruction::Run(_)
        | Instruction::Copy(_)
        | Instruction::Add(_)
        | Instruction::Workdir { .. } => return false,
    }
    true
}

fn healthcheck(check: &Healthcheck) -> ConfigHealthcheck {
    match check {
        Healthcheck::None => ConfigHealthcheck { test: Some(vec!["NONE".to_string()]), ..Default::default() },
        Healthcheck::Check { test, interval, timeout, start_period, start_interval, retries } => {
            let test = match test {
                ShellOrExec::Shell(cmd) => vec!["CMD-SHELL".to_string(), cmd.clone()],
                ShellOrExec::Exec(args) => std::iter::once("CMD".to_string()).chain(args.iter().cloned()).collect(),
            };
            let nanos = |d: &Option<std::time::Duration>| d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            ConfigHealthcheck {
                test: Some(test),
                interval: nanos(interval),
                timeout: nanos(timeout),
                start_period: nanos(start_period),
                start_interval: nanos(start_interval),
                retries: retries.map(i64::from),
                extra: BTreeMap::new(),
            }
        }
    }
}

/// The history `created_by` of an instruction, as BuildKit writes it:
/// RUN shows the command as run, file operations get `# buildkit`.
pub(crate) fn created_by(cc: Option<&ContainerConfig>, instruction: &Instruction, text: &str) -> String {
    match instruction {
        Instruction::Run(run) => format!("RUN {} # buildkit", command_argv(cc, &run.command).join(" ")),
        Instruction::Copy(_) | Instruction::Add(_) => format!("{text} # buildkit"),
        _ => text.to_string(),
    }
}
