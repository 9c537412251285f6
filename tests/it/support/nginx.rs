//! A real nginx in front of test servers (Debian's `nginx-light`): a load balancer over one or
//! more backends, as a deployment runs it. Started as a child process with everything it
//! writes in a temporary folder; stopped when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Nginx {
    /// Where visitors connect: system_url's address.
    pub addr: SocketAddr,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// The nginx binary: `None` where it is not installed, except where the tools are required
/// (CI), where that fails the test.
fn binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().map(PathBuf::from).find(|p| p.is_file());
    if found.is_none() {
        assert!(
            !super::tools_required(),
            "nginx is required here (CI or GATEHOUSE_TEST_REQUIRE_TOOLS) but is not installed: apt-get install nginx-light"
        );
        eprintln!("note: nginx is not installed (apt-get install nginx-light); test not run");
    }
    found
}

impl Nginx {
    /// Takes an address for nginx to listen on, before the backends start (they need it as
    /// system_url); `None` without nginx.
    pub fn reserve() -> Option<Reserved> {
        binary()?;
        Some(Reserved { addr: SocketAddr::from(([127, 0, 0, 1], super::port_for_a_server())) })
    }

    pub fn base(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops nginx, keeping its address for the next start (`balance` again).
    pub fn stop(mut self) -> Reserved {
        self.terminate();
        Reserved { addr: self.addr }
    }

    fn terminate(&mut self) {
        // SIGTERM, not SIGKILL: the master then stops its workers, which would otherwise keep
        // the listening socket open.
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    /// What nginx logged, for a failed test's message.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

/// The line that passes the visitor's Host to gatehouse (without it nginx sends the upstream's
/// name).
pub const PASS_HOST: &str = "proxy_set_header Host $http_host;";

pub struct Reserved {
    pub addr: SocketAddr,
}

impl Reserved {
    pub fn base(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Starts nginx on the reserved address, balancing round-robin over `backends`, passing
    /// `Host` through and saying who the visitor was (X-Forwarded-For) and how they came
    /// (X-Forwarded-Proto) — the lines of `contrib/nginx/gatehouse.conf`.
    pub fn balance(self, backends: &[SocketAddr]) -> Nginx {
        self.balance_with(backends, PASS_HOST)
    }

    /// [`Reserved::balance`] with `directives` in the proxied location instead of [`PASS_HOST`]
    /// (a misconfiguration under test: the Host line left out, or `proxy_hide_header Set-Cookie;`).
    pub fn balance_with(self, backends: &[SocketAddr], directives: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let servers: String = backends.iter().map(|b| format!("    server {b};\n")).collect();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               upstream gatehouse {{\n{servers}  }}\n\
               server {{\n    listen {addr};\n    location / {{\n      proxy_pass http://gatehouse;\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 proxy_set_header X-Forwarded-Proto $scheme;\n      {directives}\n    }}\n  }}\n}}\n",
            addr = self.addr
        );
        Nginx::spawn(dir, conf, self.addr)
    }
}

impl Nginx {
    /// Runs nginx on `conf` (written into `dir`, where it keeps everything), and waits until
    /// `addr` accepts connections (bounded: nginx starts in milliseconds).
    fn spawn(dir: tempfile::TempDir, conf: String, addr: SocketAddr) -> Nginx {
        let d = dir.path().display().to_string();
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(binary().unwrap())
            .args(["-p", &d, "-c", path.to_str().unwrap(), "-e", &format!("{d}/error.log")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nginx = Nginx { addr, child: Some(child), dir };
        for _ in 0..200 {
            if std::net::TcpStream::connect(nginx.addr).is_ok() {
                return nginx;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("nginx did not start on {}:\n{}", nginx.addr, nginx.error_log());
    }
}

/// `contrib/nginx/gatehouse.conf` exactly as shipped, but for what a test machine must change:
/// its two ports (plain and TLS) on 127.0.0.1, the certificate (a self-signed one for
/// billing.example.com, made here) and gatehouse's address. Every directive the file teaches
/// operators — the redirect to https, the headers, the probe location — is run as written.
pub struct Shipped {
    pub http: Reserved,
    pub https: Reserved,
}

impl Shipped {
    /// Takes the two ports first (system_url needs the TLS one); `None` without nginx.
    pub fn reserve() -> Option<Shipped> {
        Some(Shipped { http: Nginx::reserve()?, https: Nginx::reserve()? })
    }

    /// system_url as the shipped file has it, on the TLS port.
    pub fn system_url(&self) -> String {
        format!("https://billing.example.com:{}/", self.https.addr.port())
    }

    /// Starts nginx with the shipped file in front of `backend`.
    pub fn start(self, backend: SocketAddr) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["billing.example.com".to_string()]).unwrap().self_signed(&key).unwrap();
        std::fs::write(dir.path().join("fullchain.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("privkey.pem"), key.serialize_pem()).unwrap();
        let (http, https) = (self.http.addr, self.https.addr);
        let shipped = include_str!("../../../contrib/nginx/gatehouse.conf")
            .replace("listen 80;", &format!("listen {http};"))
            .replace("listen 443 ssl http2;", &format!("listen {https} ssl http2;"))
            .replace(
                "https://billing.example.com$request_uri",
                &format!("https://billing.example.com:{}$request_uri", https.port()),
            )
            .replace("/etc/letsencrypt/live/billing.example.com", &dir.path().display().to_string())
            .replace("http://127.0.0.1:8080", &format!("http://{backend}"));
        std::fs::write(dir.path().join("gatehouse.conf"), shipped).unwrap();
        let d = dir.path().display();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               include {d}/gatehouse.conf;\n}}\n"
        );
        Nginx::spawn(dir, conf, https)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.terminate();
    }
}
