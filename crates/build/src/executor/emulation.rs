//! Running another architecture's RUN steps: qemu-user through the kernel's
//! binfmt_misc, as BuildKit does. runc needs nothing special: the handler
//! must only be registered with the F (fix binary) flag, so that the kernel
//! opened the interpreter at registration and the container's mount
//! namespace (where `/usr/libexec/qemu-binfmt/…` does not exist) does not
//! matter.

use std::fs;
use std::path::Path;

use super::ExecError;

/// Where binfmt_misc is mounted.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The qemu-user name of an OCI architecture (`arm64` → `aarch64`), which
/// is also the name of Debian's binfmt handler (`qemu-aarch64`).
pub fn qemu_arch(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "amd64" => "x86_64",
        "386" => "i386",
        "arm64" => "aarch64",
        "arm" => "arm",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64le" => "mips64el",
        "loong64" => "loongarch64",
        _ => return None,
    })
}

/// The OCI architecture of this machine.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Whether this machine runs `arch` binaries itself: its own architecture,
/// and the 32-bit one its CPU executes (386 on amd64, arm on arm64).
pub fn runs_natively(arch: &str) -> bool {
    let host = host_arch();
    arch == host || matches!((host, arch), ("amd64", "386") | ("arm64", "arm"))
}

/// Checks that `os/arch` binaries can run in a container here: natively, or
/// through an enabled `qemu-<arch>` binfmt_misc handler with the F flag in
/// `binfmt_dir` (normally [`BINFMT_DIR`]). The error says what to install
/// or enable.
pub fn check_emulation(binfmt_dir: &Path, os: &str, arch: &str) -> Result<(), ExecError> {
    let host = format!("{}/{}", std::env::consts::OS, host_arch());
    let fail = |reason: String| ExecError::NoEmulation { platform: format!("{os}/{arch}"), host: host.clone(), reason };
    if os != std::env::consts::OS {
        return Err(fail(format!("only {} images can run here", std::env::consts::OS)));
    }
    if runs_natively(arch) {
        return Ok(());
    }
    let Some(qemu) = qemu_arch(arch) else {
        return Err(fail(format!("qemu-user does not emulate the {arch} architecture")));
    };
    let install = format!(
        "install qemu-user-static (apt-get install qemu-user-static binfmt-support) and register it \
         (update-binfmts --enable qemu-{qemu})"
    );
    if !binfmt_dir.join("register").exists() {
        return Err(fail(format!(
            "binfmt_misc is not mounted at {}: mount it (mount -t binfmt_misc binfmt_misc {0}), then {install}",
            binfmt_dir.display()
        )));
    }
    let entry = binfmt_dir.join(format!("qemu-{qemu}"));
    let text = match fs::read_to_string(&entry) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(format!("no qemu-{qemu} handler in {}: {install}", binfmt_dir.display())));
        }
        Err(e) => return Err(ExecError::io(format!("reading {}", entry.display()), e)),
    };
    if text.lines().next().map(str::trim) != Some("enabled") {
        return Err(fail(format!("the qemu-{qemu} handler is disabled: echo 1 > {}", entry.display())));
    }
    let flags = text.lines().find_map(|l| l.strip_prefix("flags:")).unwrap_or("").trim();
    if !flags.contains('F') {
        return Err(fail(format!(
            "the qemu-{qemu} handler lacks the F flag, so its interpreter cannot be found inside a container: \
             register it with F (Debian's qemu-user-static package does; see /usr/lib/binfmt.d/qemu-{qemu}.conf)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_binfmt(entries: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("register"), "").unwrap();
        fs::write(dir.path().join("status"), "enabled\n").unwrap();
        for (name, content) in entries {
            fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    /// A foreign architecture: arm64 on anything but arm64, else amd64.
    fn foreign() -> (&'static str, &'static str) {
        if host_arch() == "arm64" { ("amd64", "x86_64") } else { ("arm64", "aarch64") }
    }

    const ENABLED_F: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/x-binfmt-P\nflags: PF\noffset 0\n";

    #[test]
    fn native_needs_no_handler() {
        let dir = tempfile::tempdir().unwrap();
        check_emulation(dir.path(), "linux", host_arch()).unwrap();
    }

    #[test]
    fn an_enabled_handler_with_f_passes() {
        let (arch, qemu) = foreign();
        let dir = fake_binfmt(&[(&format!("qemu-{qemu}"), ENABLED_F)]);
        check_emulation(dir.path(), "linux", arch).unwrap();
    }

    #[test]
    fn a_missing_handler_names_the_package() {
        let (arch, qemu) = foreign();
        let dir = fake_binfmt(&[]);
        let err = check_emulation(dir.path(), "linux", arch).unwrap_err().to_string();
        assert!(err.contains(&format!("linux/{arch}")), "{err}");
        assert!(err.contains("qemu-user-static"), "{err}");
        assert!(err.contains(&format!("update-binfmts --enable qemu-{qemu}")), "{err}");
    }

    #[test]
    fn an_unmounted_binfmt_misc_says_how_to_mount() {
        let (arch, _) = foreign();
        let dir = tempfile::tempdir().unwrap();
        let err = check_emulation(dir.path(), "linux", arch).unwrap_err().to_string();
        assert!(err.contains("mount -t binfmt_misc"), "{err}");
        assert!(err.contains("qemu-user-static"), "{err}");
    }

    #[test]
    fn disabled_or_no_f_flag_is_refused() {
        let (arch, qemu) = foreign();
        let disabled = fake_binfmt(&[(&format!("qemu-{qemu}"), &ENABLED_F.replacen("enabled", "disabled", 1))]);
        let err = check_emulation(disabled.path(), "linux", arch).unwrap_err().to_string();
        assert!(err.contains("disabled"), "{err}");
        let no_f = fake_binfmt(&[(&format!("qemu-{qemu}"), &ENABLED_F.replace("flags: PF", "flags: P"))]);
        let err = check_emulation(no_f.path(), "linux", arch).unwrap_err().to_string();
        assert!(err.contains("F flag"), "{err}");
    }

    #[test]
    fn unknown_architectures_and_oses_are_refused() {
        let dir = fake_binfmt(&[]);
        assert!(check_emulation(dir.path(), "linux", "sparc").unwrap_err().to_string().contains("sparc"));
        assert!(check_emulation(dir.path(), "windows", host_arch()).is_err());
    }
}
