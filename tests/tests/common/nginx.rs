//! nginx as the log's CDN, configured by the shipped
//! `infra/cdn/stele-cdn.conf.template`: the tests render that file, wrap
//! it in a minimal main config whose pid, logs, temporary files and cache
//! all live in a temporary folder, and run nginx in the foreground on a
//! free loopback port. So what is tested is what is deployed.
//!
//! nginx runs under a small `sh` watchdog (as SeaweedFS does) that stops
//! it when the test process exits, however it exits; a SIGKILLed nginx
//! master would leave its workers serving.
//!
//! Set `STELE_SKIP_CDN_TESTS=1` to skip the tests that need nginx, outside
//! CI: with the `CI` environment variable set, that request fails them.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The shipped template, relative to this crate.
pub fn template_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/cdn/stele-cdn.conf.template")
}

/// What the template is rendered with (its `STELE_CDN_*` variables).
#[derive(Debug, Clone)]
pub struct CdnSettings {
    /// `STELE_CDN_LISTEN`: `127.0.0.1:PORT`.
    pub listen: String,
    /// `STELE_CDN_ORIGIN`: the S3 endpoint's `host:port`.
    pub origin: String,
    /// `STELE_CDN_LOG_PATH`: `/<bucket>/<prefix>`.
    pub log_path: String,
    /// `STELE_CDN_CACHE_DIR`.
    pub cache_dir: PathBuf,
}

/// The template with every `${STELE_CDN_*}` replaced. Panics if the
/// template names a variable this function does not know, so a template
/// change cannot go untested.
pub fn render(settings: &CdnSettings) -> String {
    let template = std::fs::read_to_string(template_path()).expect("read the nginx template");
    let cache_dir = settings.cache_dir.display().to_string();
    let mut text = template;
    for (name, value) in [
        ("STELE_CDN_LISTEN", settings.listen.as_str()),
        ("STELE_CDN_ORIGIN", settings.origin.as_str()),
        ("STELE_CDN_LOG_PATH", settings.log_path.as_str()),
        ("STELE_CDN_CACHE_DIR", cache_dir.as_str()),
    ] {
        let placeholder = format!("${{{name}}}");
        assert!(
            text.contains(&placeholder),
            "the nginx template no longer uses {placeholder}"
        );
        text = text.replace(&placeholder, value);
    }
    if let Some(position) = text.find("${") {
        let rest = &text[position..];
        panic!(
            "the nginx template uses a variable the tests do not set: {}",
            &rest[..rest.find('}').map_or(rest.len(), |end| end + 1)]
        );
    }
    text
}

/// The nginx binary: `STELE_NGINX`, else `nginx` on PATH, else Debian's
/// `/usr/sbin/nginx`; `None` if there is none.
pub fn binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("STELE_NGINX") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|folder| folder.join("nginx"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|path| path.is_file()))
}

/// The nginx binary, or `None` (with a message) when
/// `STELE_SKIP_CDN_TESTS=1` and `CI` is unset. Panics, naming the fix, when
/// it is missing, or when a skip is asked for under CI.
pub fn require_binary() -> Option<PathBuf> {
    if std::env::var("STELE_SKIP_CDN_TESTS").as_deref() == Ok("1") {
        assert!(
            std::env::var_os("CI").is_none(),
            "STELE_SKIP_CDN_TESTS=1 asks to skip the tests that need nginx, but CI is set: \
             a CI run must not pass without them; unset STELE_SKIP_CDN_TESTS"
        );
        eprintln!("SKIPPED: STELE_SKIP_CDN_TESTS=1: skipping the tests that need nginx");
        return None;
    }
    match binary() {
        Some(path) => Some(path),
        None => panic!(
            "the CDN tests need nginx: run `scripts/install-test-deps.sh` (apt-get install \
             nginx), set STELE_NGINX to its path, or set STELE_SKIP_CDN_TESTS=1 to skip them (outside CI)"
        ),
    }
}

/// A main nginx.conf for a test: everything nginx writes stays in
/// `folder`, and the rendered template is included in `http`.
fn main_config(folder: &Path, include: &Path) -> String {
    let path = |name: &str| folder.join(name).display().to_string();
    // As root, nginx would run its workers as `nobody`, who cannot enter
    // the private temporary folder.
    let user = match std::fs::metadata("/proc/self") {
        Ok(metadata) if metadata.uid() == 0 => "user root;\n",
        _ => "",
    };
    format!(
        "daemon off;\n\
         {user}\
         worker_processes 2;\n\
         pid {pid};\n\
         error_log {error_log} info;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n\
         \x20   access_log {access_log};\n\
         \x20   client_body_temp_path {tmp}/body;\n\
         \x20   proxy_temp_path {tmp}/proxy;\n\
         \x20   fastcgi_temp_path {tmp}/fastcgi;\n\
         \x20   uwsgi_temp_path {tmp}/uwsgi;\n\
         \x20   scgi_temp_path {tmp}/scgi;\n\
         \x20   include {include};\n\
         }}\n",
        pid = path("nginx.pid"),
        error_log = path("error.log"),
        access_log = path("access.log"),
        tmp = path("tmp"),
        include = include.display(),
    )
}

/// A folder with `nginx.conf` (the main config) and `stele-cdn.conf` (the
/// rendered template) for an origin, listening on `listen`.
pub fn write_config(folder: &Path, listen: &str, origin: &str, log_path: &str) -> PathBuf {
    std::fs::create_dir_all(folder.join("tmp")).expect("nginx temp folder");
    let settings = CdnSettings {
        listen: listen.to_owned(),
        origin: origin.to_owned(),
        log_path: log_path.to_owned(),
        cache_dir: folder.join("cache"),
    };
    let site = folder.join("stele-cdn.conf");
    std::fs::write(&site, render(&settings)).expect("write the rendered template");
    let main = folder.join("nginx.conf");
    std::fs::write(&main, main_config(folder, &site)).expect("write nginx.conf");
    main
}

/// `nginx -t` of a config: `Err` holds nginx's output.
pub fn check_config(nginx: &Path, folder: &Path, config: &Path) -> Result<(), String> {
    let output = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(folder)
        .arg("-c")
        .arg(config)
        .arg("-e")
        .arg(folder.join("error.log"))
        .output()
        .expect("run nginx -t");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A running nginx. Dropping it stops it.
#[derive(Debug)]
pub struct Nginx {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    /// Closing this makes the watchdog stop nginx.
    watchdog: Option<ChildStdin>,
    folder: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx with the shipped config in front of `origin`
    /// (`host:port` of the S3 endpoint), serving the log at `log_path`
    /// (`/<bucket>/<prefix>`), and waits until it listens.
    pub fn start(nginx: &Path, origin: &str, log_path: &str) -> Nginx {
        let mut last_error = String::new();
        // A free port can be taken between the probe and nginx's bind.
        for _ in 0..5 {
            let folder = tempfile::tempdir().expect("temp folder for nginx");
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free loopback port")
                .port();
            let config = write_config(
                folder.path(),
                &format!("127.0.0.1:{port}"),
                origin,
                log_path,
            );
            if let Err(output) = check_config(nginx, folder.path(), &config) {
                panic!("nginx -t refuses the rendered config:\n{output}");
            }
            // sh exits with nginx; the reader stops nginx when the test's
            // end of the pipe closes.
            let command = format!(
                "exec 3<&0; '{nginx}' -p '{folder}' -c '{config}' -e '{error_log}' </dev/null & \
                 pid=$!; {{ read _ <&3; kill -TERM $pid 2>/dev/null; }} & wait $pid",
                nginx = nginx.display(),
                folder = folder.path().display(),
                config = config.display(),
                error_log = folder.path().join("error.log").display(),
            );
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(&command)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn sh to run nginx");
            let watchdog = child.stdin.take();
            let mut server = Nginx {
                url: format!("http://127.0.0.1:{port}"),
                child,
                watchdog,
                folder,
            };
            match server.wait_until_listening(port, Duration::from_secs(30)) {
                Ok(()) => return server,
                Err(log) => last_error = log,
            }
        }
        panic!("nginx did not start; its error log:\n{last_error}");
    }

    fn wait_until_listening(&mut self, port: u16, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(self.error_log());
            }
            if started.elapsed() > limit {
                panic!(
                    "nginx did not listen within {limit:?}; its error log:\n{}",
                    self.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("error.log")).unwrap_or_default()
    }

    /// nginx's access log so far.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.watchdog.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}
