//! The deployment files under `infra/`, checked without a cloud account:
//!
//! - the CloudFormation templates pass `cfn-lint`, and `checkov` (a
//!   security scanner) finds nothing it does not report as skipped, each
//!   skip with its reason in the template and listed in
//!   `infra/aws/README.md`;
//! - all YAML there passes `yamllint` (strict), the shell scripts
//!   `shellcheck`;
//! - the CDN template, rendered, passes `nginx -t`;
//! - the systemd unit passes `systemd-analyze verify` without a warning;
//! - the example `stele.toml` is a config `stele serve` takes; it and the
//!   other configs of the deployments (Compose's, the one the AWS
//!   template's entrypoint writes) parse and validate as two shards in one
//!   bucket, and each shard's key, bucket prefix and name are wired through
//!   the unit, the Compose file and the template;
//! - nothing secret is committed.
//!
//! Each check runs a real tool, and first shows that the tool rejects a
//! broken input, so that a check cannot pass by not looking. A missing tool
//! fails the test when `CI` is set (`scripts/install-test-deps.sh` installs
//! them all) and skips it with a message otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use stele_sequencer::config::ResolvedShard;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

fn infra() -> PathBuf {
    repository().join("infra")
}

/// `name` on PATH (or at one of `also`), or `None` when it is missing and
/// `CI` is not set. Panics, naming the fix, when it is missing in CI.
fn tool(name: &str, also: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|folder| folder.join(name))
            .find(|candidate| candidate.is_file())
    });
    let found = on_path.or_else(|| {
        also.iter()
            .map(PathBuf::from)
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let message =
            format!("`{name}` is not installed; scripts/install-test-deps.sh installs it");
        assert!(std::env::var_os("CI").is_none(), "{message} (CI is set)");
        eprintln!("SKIPPED: {message}");
    }
    found
}

fn run(program: &Path, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("run {}: {err}", program.display()))
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every file under `folder`, except what operators create there and git
/// ignores (`.env`, `secrets/`).
fn files_under(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read an infra folder") {
            let path = entry.expect("a folder entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name == ".env" || name == "secrets" {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn with_extension(extensions: &[&str]) -> Vec<PathBuf> {
    files_under(&infra())
        .into_iter()
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extensions.iter().any(|wanted| extension == *wanted))
        })
        .collect()
}

#[test]
fn cloudformation_templates_pass_cfn_lint() {
    let Some(cfn_lint) = tool("cfn-lint", &[]) else {
        return;
    };
    let templates = cloudformation_templates();

    // A resource property of the wrong type must be reported.
    let folder = tempfile::tempdir().expect("temp folder");
    let broken = folder.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n    Properties:\n      \
         VersioningConfiguration: enabled\n",
    )
    .expect("write a broken template");
    let output = run(&cfn_lint, &[broken.as_os_str()]);
    assert!(
        !output.status.success(),
        "cfn-lint accepted a broken template: {}",
        describe(&output)
    );

    let args: Vec<&std::ffi::OsStr> = templates.iter().map(|path| path.as_os_str()).collect();
    let output = run(&cfn_lint, &args);
    assert!(
        output.status.success(),
        "cfn-lint {templates:?}: {}",
        describe(&output)
    );
}

/// The CloudFormation templates in `infra/aws`.
fn cloudformation_templates() -> Vec<PathBuf> {
    let templates = with_extension(&["yaml", "yml", "json"])
        .into_iter()
        .filter(|path| path.parent() == Some(infra().join("aws").as_path()))
        .collect::<Vec<_>>();
    assert!(!templates.is_empty(), "no templates in infra/aws");
    templates
}

/// What checkov reported on some templates.
struct CheckovReport {
    success: bool,
    passed: u64,
    resources: u64,
    /// `check id on resource`, for each failed check.
    failed: Vec<String>,
    /// `(check id, resource, reason)`, for each skipped check.
    skipped: Vec<(String, String, String)>,
}

/// Runs checkov's CloudFormation checks on `templates` offline
/// (`--skip-download`: no guidelines or policies fetched from the vendor).
fn checkov_report(checkov: &Path, templates: &[PathBuf]) -> CheckovReport {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--framework".as_ref(),
        "cloudformation".as_ref(),
        "--skip-download".as_ref(),
        "--output".as_ref(),
        "json".as_ref(),
    ];
    for template in templates {
        args.push("--file".as_ref());
        args.push(template.as_os_str());
    }
    let output = run(checkov, &args);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("checkov's JSON report: {err}\n{}", describe(&output)));
    let summary = &report["summary"];
    let count = |name: &str| {
        summary[name]
            .as_u64()
            .unwrap_or_else(|| panic!("checkov's summary has no {name}: {summary}"))
    };
    assert_eq!(
        count("parsing_errors"),
        0,
        "checkov could not parse a template: {}",
        describe(&output)
    );
    let checks = |kind: &str| {
        report["results"][kind]
            .as_array()
            .unwrap_or_else(|| panic!("checkov's report has no {kind}"))
            .clone()
    };
    let text = |check: &serde_json::Value, field: &str| {
        check[field].as_str().unwrap_or_default().to_owned()
    };
    let failed = checks("failed_checks")
        .iter()
        .map(|check| {
            format!(
                "{} ({}) on {}",
                text(check, "check_id"),
                text(check, "check_name"),
                text(check, "resource")
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(failed.len() as u64, count("failed"), "checkov's summary");
    let skipped = checks("skipped_checks")
        .iter()
        .map(|check| {
            (
                text(check, "check_id"),
                text(check, "resource"),
                check["check_result"]["suppress_comment"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    CheckovReport {
        success: output.status.success(),
        passed: count("passed"),
        resources: count("resource_count"),
        failed,
        skipped,
    }
}

#[test]
fn cloudformation_templates_pass_checkov() {
    let Some(checkov) = tool("checkov", &["/opt/checkov/bin/checkov"]) else {
        return;
    };

    // checkov looks: a bare bucket, and a function with a plain
    // environment, fail its checks (encryption, versioning, logging...).
    let folder = tempfile::tempdir().expect("temp folder");
    let insecure = folder.path().join("insecure.yaml");
    std::fs::write(
        &insecure,
        "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n  Function:\n    \
         Type: AWS::Lambda::Function\n    Properties:\n      Runtime: provided.al2023\n      \
         Handler: bootstrap\n      Role: arn:aws:iam::123456789012:role/example\n      \
         Code:\n        ZipFile: example\n      Environment:\n        Variables:\n          \
         SECRET_NAME: example\n",
    )
    .expect("write an insecure template");
    let report = checkov_report(&checkov, std::slice::from_ref(&insecure));
    assert!(
        !report.success,
        "checkov succeeded with failed checks: {:?}",
        report.failed
    );
    for expected in ["CKV_AWS_18 ", "CKV_AWS_21 ", "CKV_AWS_173 "] {
        assert!(
            report
                .failed
                .iter()
                .any(|failed| failed.starts_with(expected)),
            "checkov missed {expected}on the insecure template: {:?}",
            report.failed
        );
    }

    let templates = cloudformation_templates();
    let report = checkov_report(&checkov, &templates);
    assert!(
        report.failed.is_empty() && report.success,
        "checkov's failed checks on {templates:?}:\n{}",
        report.failed.join("\n")
    );
    assert!(
        report.resources > 0 && report.passed > 0,
        "checkov checked nothing in {templates:?}"
    );

    // A skipped check is a decision: it carries its reason in the
    // template, and the README lists it.
    let readme = std::fs::read_to_string(infra().join("aws/README.md")).expect("the README");
    for (check, resource, reason) in &report.skipped {
        assert!(
            !reason.trim().is_empty() && reason != "No comment provided",
            "{check} is skipped on {resource} without a reason"
        );
        assert!(
            readme.contains(&format!("`{check}`")),
            "{check} is skipped on {resource} ({reason}), but infra/aws/README.md does not list it"
        );
    }
    eprintln!(
        "checkov: {} passed, {} failed, {} skipped",
        report.passed,
        report.failed.len(),
        report.skipped.len()
    );
}

#[test]
fn infra_yaml_passes_yamllint() {
    let Some(yamllint) = tool("yamllint", &[]) else {
        return;
    };
    let config = infra().join(".yamllint.yaml");
    let folder = tempfile::tempdir().expect("temp folder");
    let broken = folder.path().join("broken.yaml");
    std::fs::write(&broken, "key: value\nkey: again\n").expect("write broken YAML");
    let output = run(
        &yamllint,
        &[
            "-s".as_ref(),
            "-c".as_ref(),
            config.as_os_str(),
            broken.as_os_str(),
        ],
    );
    assert!(
        !output.status.success(),
        "yamllint accepted a duplicated key: {}",
        describe(&output)
    );

    let files = with_extension(&["yaml", "yml"]);
    assert!(files.len() >= 2, "YAML under infra/: {files:?}");
    let mut args: Vec<&std::ffi::OsStr> = vec!["-s".as_ref(), "-c".as_ref(), config.as_os_str()];
    args.extend(files.iter().map(|path| path.as_os_str()));
    let output = run(&yamllint, &args);
    assert!(output.status.success(), "yamllint: {}", describe(&output));
}

#[test]
fn infra_scripts_pass_shellcheck() {
    let Some(shellcheck) = tool("shellcheck", &[]) else {
        return;
    };
    let folder = tempfile::tempdir().expect("temp folder");
    let broken = folder.path().join("broken.sh");
    std::fs::write(&broken, "#!/bin/sh\nrm -rf $1/*\n").expect("write a broken script");
    let output = run(&shellcheck, &[broken.as_os_str()]);
    assert!(
        !output.status.success(),
        "shellcheck accepted an unquoted variable: {}",
        describe(&output)
    );

    let scripts = with_extension(&["sh"]);
    assert!(!scripts.is_empty(), "no scripts under infra/");
    let args: Vec<&std::ffi::OsStr> = scripts.iter().map(|path| path.as_os_str()).collect();
    let output = run(&shellcheck, &args);
    assert!(
        output.status.success(),
        "shellcheck {scripts:?}: {}",
        describe(&output)
    );
}

#[test]
fn the_rendered_cdn_config_passes_nginx_t() {
    if common::nginx::binary().is_none() {
        // Reported, and failed in CI, as for the other tools.
        tool("nginx", &["/usr/sbin/nginx"]);
        return;
    }
    let nginx = common::nginx::binary().expect("nginx");
    let folder = tempfile::tempdir().expect("temp folder");
    let config = common::nginx::write_config(
        folder.path(),
        "127.0.0.1:8080",
        "127.0.0.1:9000",
        "/stele/logs/main",
    );
    if let Err(output) = common::nginx::check_config(&nginx, folder.path(), &config) {
        panic!("nginx -t refuses the rendered infra/cdn template:\n{output}");
    }

    // nginx -t does look: a rendering that lost its origin is refused.
    let broken = tempfile::tempdir().expect("temp folder");
    let config = common::nginx::write_config(broken.path(), "127.0.0.1:8080", "", "/stele");
    assert!(
        common::nginx::check_config(&nginx, broken.path(), &config).is_err(),
        "nginx -t accepted an upstream without a server"
    );
}

/// `systemd-analyze verify` of `unit` with its `ExecStart` pointed at the
/// built `stele` (verify checks that the program exists); every line it
/// prints is a problem it found.
fn systemd_verify(systemd_analyze: &Path, unit_text: &str) -> Output {
    let folder = tempfile::tempdir().expect("temp folder");
    let stele = common::stele_binary();
    let unit = folder.path().join("stele.service");
    std::fs::write(
        &unit,
        unit_text.replace("/usr/local/bin/stele", &stele.display().to_string()),
    )
    .expect("write the unit");
    run(systemd_analyze, &["verify".as_ref(), unit.as_os_str()])
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Some(systemd_analyze) = tool("systemd-analyze", &["/usr/bin/systemd-analyze"]) else {
        return;
    };
    let text = std::fs::read_to_string(infra().join("minio/stele.service")).expect("the unit");
    assert!(
        text.contains("ExecStart=/usr/local/bin/stele "),
        "the unit runs /usr/local/bin/stele"
    );

    let broken = systemd_verify(
        &systemd_analyze,
        &text.replace("ProtectSystem=strict", "ProtectSystem=sometimes"),
    );
    assert!(
        !broken.stderr.is_empty() || !broken.status.success(),
        "systemd-analyze did not notice a bad value: {}",
        describe(&broken)
    );

    let output = systemd_verify(&systemd_analyze, &text);
    assert!(
        output.status.success() && output.stderr.is_empty() && output.stdout.is_empty(),
        "systemd-analyze verify infra/minio/stele.service: {}",
        describe(&output)
    );
}

/// Runs `stele serve` with the example config, its endpoint pointed at a
/// closed port: a valid config gets as far as the storage check.
fn serve_with_config(config: &Path) -> (bool, String) {
    let folder = tempfile::tempdir().expect("temp folder");
    let mut child = Command::new(common::stele_binary())
        .arg("serve")
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(folder.path())
        .args(["--s3-endpoint", "http://127.0.0.1:1"])
        .args(["--log-level", "warn"])
        .env("AWS_ACCESS_KEY_ID", "example")
        .env("AWS_SECRET_ACCESS_KEY", "example")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stele serve");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll stele") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("stele serve with an unreachable store did not give up within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("stele's stderr");
    (
        status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_example_stele_toml_is_a_config_stele_serve_takes() {
    let example = infra().join("minio/stele.toml.example");
    let (success, stderr) = serve_with_config(&example);
    assert!(!success, "stele serve ran without a store: {stderr}");
    assert!(
        stderr.contains("http://127.0.0.1:1"),
        "stele serve stopped before it tried the store, so the config is wrong: {stderr}"
    );

    let folder = tempfile::tempdir().expect("temp folder");
    let broken = folder.path().join("stele.toml");
    let text = std::fs::read_to_string(&example).expect("the example");
    std::fs::write(&broken, text.replace("max_batch", "max_batches")).expect("write");
    let (_, stderr) = serve_with_config(&broken);
    assert!(
        !stderr.contains("http://127.0.0.1:1"),
        "stele serve took an unknown key: {stderr}"
    );
}

/// `text` read as `stele serve` reads a config file, and validated.
fn parsed_config(what: &str, text: &str) -> stele_sequencer::config::Config {
    let config = stele_sequencer::config::Config::from_toml(text)
        .unwrap_or_else(|err| panic!("{what} does not parse: {err}"));
    config
        .validate()
        .unwrap_or_else(|err| panic!("{what} is not valid: {err}"));
    config
}

/// The shards of a config: two, named 2026 and 2027, with each `url`
/// containing its origin (as sigstore-js requires) and windows that follow
/// one another. Returns the resolved shards.
fn two_shards(what: &str, config: &stele_sequencer::config::Config) -> Vec<ResolvedShard> {
    let shards = config.resolved_shards();
    let names: Vec<_> = shards.iter().map(|shard| shard.name.clone()).collect();
    assert_eq!(
        names,
        [Some("2026".to_owned()), Some("2027".to_owned())],
        "{what}: the shards"
    );
    for shard in &shards {
        let origin = shard.origin.as_deref().expect("a shard has an origin");
        let url = shard.url.as_deref().expect("each shard has a url");
        assert!(
            url.contains(origin),
            "{what}: url {url} lacks origin {origin}"
        );
        assert!(
            shard.window.from.is_some() && shard.window.until.is_some(),
            "{what}: each shard has a window"
        );
    }
    assert_eq!(
        shards[0].window.until, shards[1].window.from,
        "{what}: the second window opens when the first closes"
    );
    shards
}

#[test]
fn the_deployments_configure_two_shards_in_one_bucket() {
    use stele_sequencer::config::StorageConfig;

    // Bare metal: the example for stele.service. Both shards in the one
    // bucket under their names, each key a credential the unit loads.
    let example =
        std::fs::read_to_string(infra().join("minio/stele.toml.example")).expect("the example");
    let unit = std::fs::read_to_string(infra().join("minio/stele.service")).expect("the unit");
    let config = parsed_config("stele.toml.example", &example);
    for shard in two_shards("stele.toml.example", &config) {
        let name = shard.name.as_deref().expect("a name");
        match &shard.storage {
            StorageConfig::S3(s3) => {
                assert_eq!(s3.bucket, "stele");
                assert_eq!(s3.prefix.as_deref(), Some(name), "shard {name}'s prefix");
            }
            other => panic!("shard {name} is not in the bucket: {other:?}"),
        }
        let credential = shard
            .key_path
            .strip_prefix("/run/credentials/stele.service")
            .unwrap_or_else(|_| panic!("shard {name}'s key is not a credential"))
            .display()
            .to_string();
        assert!(
            unit.contains(&format!("\nLoadCredential={credential}:/etc/stele/keys/")),
            "stele.service does not load {credential}"
        );
    }
    // Validation does look: one name twice is refused.
    let twice = example.replace("name = \"2027\"", "name = \"2026\"");
    let err = stele_sequencer::config::Config::from_toml(&twice)
        .expect("parses")
        .validate()
        .expect_err("two shards of one name");
    assert!(err.to_string().contains("2026"), "{err}");

    // Docker Compose: the file mounted into the stele service; the bucket
    // comes from the service's environment. Each key is a Compose secret,
    // and bucket-init publishes the shards named in .env.
    let compose_toml =
        std::fs::read_to_string(infra().join("minio/stele.compose.toml")).expect("the file");
    let compose =
        std::fs::read_to_string(infra().join("minio/docker-compose.yml")).expect("compose");
    let env = std::fs::read_to_string(infra().join("minio/.env.example")).expect(".env.example");
    assert!(compose.contains("./stele.compose.toml:/etc/stele/stele.toml:ro"));
    let config = parsed_config("stele.compose.toml", &compose_toml);
    let mut names = Vec::new();
    for shard in two_shards("stele.compose.toml", &config) {
        let name = shard.name.expect("a name");
        assert_eq!(
            shard.key_path,
            Path::new(&format!("/run/secrets/log_key_{name}"))
        );
        for wiring in [
            format!("  log_key_{name}:\n    file: ./secrets/{name}.key\n"),
            format!("      - log_key_{name}\n"),
        ] {
            assert!(
                compose.contains(&wiring),
                "docker-compose.yml lacks {wiring:?}"
            );
        }
        names.push(name);
    }
    assert!(
        env.contains(&format!("\nSTELE_SHARDS={}\n", names.join(" "))),
        ".env.example must list the shards in STELE_SHARDS"
    );

    // AWS: the config the sequencer's entrypoint writes, with the
    // template's parameter defaults; the function takes the same shards
    // and CloudFront may read each of them.
    let template = std::fs::read_to_string(infra().join("aws/stele.yaml")).expect("template");
    let rendered = substitute_parameters(&template, &template_config(&template));
    let config = parsed_config("the config in stele.yaml", &rendered);
    let names: Vec<String> = two_shards("stele.yaml", &config)
        .into_iter()
        .map(|shard| shard.name.expect("a name"))
        .collect();
    let lambda_shards = substitute_parameters(
        &template,
        "STELE_SHARDS: !Sub \"${Shard1Name},${Shard2Name}\"",
    );
    assert_eq!(
        lambda_shards,
        format!("STELE_SHARDS: !Sub \"{}\"", names.join(","))
    );
    for slot in ["Shard1Name", "Shard2Name"] {
        for object in ["checkpoint", "final-checkpoint", "tile/*", "index/*"] {
            let line = format!("- !Sub \"${{LogBucket.Arn}}/${{{slot}}}/{object}\"");
            assert!(
                template.contains(&line),
                "the bucket policy does not let CloudFront read {object} of {slot}"
            );
        }
    }
}

/// The `stele.toml` heredoc in the sequencer's entrypoint in `template`,
/// unindented.
fn template_config(template: &str) -> String {
    let start = "cat > /var/lib/stele/stele.toml <<'TOML'\n";
    let begin = template
        .find(start)
        .expect("the entrypoint writes stele.toml")
        + start.len();
    let mut lines = Vec::new();
    for line in template[begin..].lines() {
        let line = line.trim_start();
        if line == "TOML" {
            return lines.join("\n") + "\n";
        }
        lines.push(line);
    }
    panic!("the stele.toml heredoc in stele.yaml does not end");
}

/// `text` with each `${Parameter}` of `template` replaced by its default,
/// or by an example for the parameters without one.
fn substitute_parameters(template: &str, text: &str) -> String {
    let parameters = &template[template.find("\nParameters:\n").expect("parameters")..];
    let parameters = &parameters[..parameters.find("\nConditions:").expect("conditions")];
    let mut out = text.to_owned();
    let mut name = None;
    for line in parameters.lines() {
        if let Some(parameter) = line
            .strip_prefix("  ")
            .and_then(|rest| rest.strip_suffix(':'))
        {
            if !parameter.starts_with(' ') {
                name = Some(parameter.to_owned());
                if parameter == "OriginHost" {
                    out = out.replace("${OriginHost}", "log.example.org");
                }
            }
        } else if let (Some(parameter), Some(value)) =
            (&name, line.trim_start().strip_prefix("Default: "))
        {
            out = out.replace(&format!("${{{parameter}}}"), value.trim_matches('"'));
        }
    }
    assert!(
        !out.contains("${Shard") && !out.contains("${OriginHost}"),
        "a parameter without a default in {out}"
    );
    out
}

/// Where a committed file looks like it holds a secret.
fn secrets_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let at = |what: &str| format!("line {}: {what}", number + 1);
        if line.contains("PRIVATE+KEY+") {
            found.push(at("a signed-note private key"));
        }
        if line.contains("-----BEGIN") && line.contains("PRIVATE KEY") {
            found.push(at("a PEM private key"));
        }
        for prefix in ["AKIA", "ASIA"] {
            for (position, _) in line.match_indices(prefix) {
                let id = &line[position..];
                let id_chars = id
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    .count();
                if id_chars == 20 {
                    found.push(at("an AWS access key id"));
                }
            }
        }
        // NAME=value and name: value settings whose name says secret.
        let setting = line.trim_start().trim_start_matches("- ");
        if let Some((name, value)) = setting.split_once('=').or_else(|| setting.split_once(": ")) {
            let name = name.trim().to_ascii_uppercase();
            let value = value.trim().trim_matches('"');
            let secret_name = ["PASSWORD", "SECRET_KEY", "SECRET_ACCESS_KEY"]
                .iter()
                .any(|word| name.ends_with(word));
            let literal = !value.is_empty() && !value.starts_with('$') && !value.starts_with('<');
            if secret_name && literal && !name.starts_with('#') {
                found.push(at(&format!("{name} has a value")));
            }
        }
    }
    found
}

#[test]
fn no_secrets_are_committed_under_infra() {
    // The scan finds what it looks for.
    for sample in [
        "key = PRIVATE+KEY+log.example+01234567+AZ",
        "-----BEGIN EC PRIVATE KEY-----",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "MINIO_ROOT_PASSWORD=hunter2hunter2",
        "      AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI",
    ] {
        assert!(!secrets_in(sample).is_empty(), "the scan missed {sample:?}");
    }
    for sample in [
        "MINIO_ROOT_PASSWORD=",
        "AWS_SECRET_ACCESS_KEY: ${STELE_S3_SECRET_KEY:?set it in .env}",
        "aws_secret_access_key = <STELE_S3_SECRET_KEY>",
    ] {
        assert!(secrets_in(sample).is_empty(), "the scan flagged {sample:?}");
    }

    let mut found = Vec::new();
    for path in files_under(&infra()) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for problem in secrets_in(&text) {
            found.push(format!("{}: {problem}", path.display()));
        }
    }
    assert!(
        found.is_empty(),
        "secrets under infra/:\n{}",
        found.join("\n")
    );

    // What operators put there is ignored by git.
    let ignored = std::fs::read_to_string(repository().join(".gitignore")).expect(".gitignore");
    for path in ["/infra/minio/.env", "/infra/minio/secrets"] {
        assert!(
            ignored.lines().any(|line| line.trim() == path),
            ".gitignore must list {path}"
        );
    }
}
