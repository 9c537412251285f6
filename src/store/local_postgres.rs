//! How gatehouse reaches a PostgreSQL server on this machine: the address database_url names
//! without TLS (which protects nothing on loopback and costs every query its encryption), and
//! through the server's Unix socket rather than TCP when that socket reaches the very same
//! server (no TCP stack on either side: page views on PostgreSQL 8,271–8,408 → 9,175–9,543 per
//! second in one `cargo bench --bench floor` run, 2 cores).

use std::path::Path;
use std::str::FromStr;

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection};

/// Where PostgreSQL servers put their Unix sockets: Debian's and most packages' directory, and
/// upstream's default (which [`placed_by_its_owner`] turns down when it is `/tmp`).
const SOCKET_DIRS: &[&str] = &["/run/postgresql", "/var/run/postgresql", "/tmp"];

/// `url` with `sslmode=disable` when it names PostgreSQL on this machine over TCP (127.0.0.0/8,
/// ::1, localhost) and chose no `sslmode`: the default, `prefer`, encrypts every query to a
/// server on the same host — traffic that never leaves the machine and that only its root can
/// read — and cost page views on PostgreSQL a seventh of their throughput (`cargo bench --bench
/// serve`). An `sslmode` the operator wrote (in the URL or `PGSSLMODE`) is kept, whatever it
/// says. A forwarder listening on loopback for a remote server is not this machine: name its
/// `sslmode` in database_url.
pub(super) fn plain_on_loopback(url: &str, sslmode_in_environment: bool) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let local = names_this_machine(&parsed);
    // `host=/run/postgresql` in the query is a Unix socket (no TLS to speak of), and
    // `hostaddr=` the address really connected to, whatever the URL's host says.
    let chosen = sslmode_in_environment
        || parsed.query_pairs().any(|(k, _)| matches!(k.as_ref(), "sslmode" | "ssl-mode" | "host" | "hostaddr"));
    (local && !chosen).then(|| with_parameter(url, "sslmode", "disable"))
}

/// Whether a database URL's host is this machine over TCP: 127.0.0.0/8, ::1 or `localhost`.
pub fn names_this_machine(url: &url::Url) -> bool {
    match url.host() {
        // A `postgres:` URL's host is opaque to the parser: an address arrives as a name.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `plain` (a URL [`plain_on_loopback`] made) through the Unix socket of the server on its port,
/// when one that [`placed_by_its_owner`] is in a usual directory; with the socket's path.
fn through_socket(plain: &str, dirs: &[&str]) -> Option<(String, String)> {
    // The driver's own reading of the port: the URL's, else `PGPORT`, else 5432.
    let port = sqlx::postgres::PgConnectOptions::from_str(plain).ok()?.get_port();
    let socket = |dir: &str| format!("{dir}/.s.PGSQL.{port}");
    let dir = dirs.iter().find(|dir| placed_by_its_owner(Path::new(dir), Path::new(&socket(dir))))?;
    Some((with_parameter(plain, "host", dir), socket(dir)))
}

/// Whether `socket` is a socket (not a link to one) that only its directory's owner and group
/// could have put there: the directory is not writable by every user, and the socket is its
/// owner's. Checked before anything is sent: in a directory anyone may write to (`/tmp`)
/// another user could plant a socket that relays to the real server — the same server by every
/// test a query can make — and read database_url's credentials and every query on their way.
/// The directory's group is trusted as its owner is: Debian's `/run/postgresql` is writable by
/// the `postgres` group, whose members could replace the socket later; an operator who does
/// not trust them names `sslmode` or `host` in database_url, which keeps TCP.
fn placed_by_its_owner(dir: &Path, socket: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (Ok(dir), Ok(socket)) = (std::fs::metadata(dir), std::fs::symlink_metadata(socket)) else { return false };
    socket.file_type().is_socket() && dir.mode() & 0o002 == 0 && socket.uid() == dir.uid()
}

/// `url` with `key=value` added to its query (before any fragment).
fn with_parameter(url: &str, key: &str, value: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.query_pairs_mut().append_pair(key, value);
            parsed.into()
        }
        Err(_) => format!("{url}{}{key}={value}", if url.contains('?') { '&' } else { '?' }),
    }
}

/// How long reading the identity of a server on this machine may take, connection included: a
/// socket that accepts and never answers must not hold up the start.
const IDENTITY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Which server and session a connection reaches: when its postmaster started, to the
/// microsecond, the database, the role and the search path. A socket and an address that agree
/// on all of them lead to one server, in the schema database_url names; a socket of a second
/// cluster, a forwarder on loopback for a remote server, or a pooler that drops the URL's
/// `options` does not agree.
async fn identity(options: &AnyConnectOptions) -> Result<String, sqlx::Error> {
    let read = async {
        let mut connection = AnyConnection::connect_with(options).await?;
        let identity = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM pg_postmaster_start_time())::text || ' ' || current_database() \
             || ' ' || current_user || ' ' || current_setting('search_path')",
        )
        .fetch_one(&mut connection)
        .await;
        connection.close().await?;
        identity
    };
    let timed_out = || sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 3 s"));
    tokio::time::timeout(IDENTITY_TIMEOUT, read).await.map_err(|_| timed_out())?
}

/// The options to connect with: through the Unix socket when there is one for this server and
/// it takes database_url's credentials (`peer` authentication, Debian's default for sockets,
/// takes only the database user's namesake), else `tcp`, which is known to connect; with the
/// socket's path when it is the socket.
pub(super) async fn prefer_socket(plain: &str, tcp: AnyConnectOptions) -> (AnyConnectOptions, Option<String>) {
    prefer_socket_in(plain, tcp, SOCKET_DIRS).await
}

async fn prefer_socket_in(plain: &str, tcp: AnyConnectOptions, dirs: &[&str]) -> (AnyConnectOptions, Option<String>) {
    let Some((url, socket)) = through_socket(plain, dirs) else { return (tcp, None) };
    let Ok(through_socket) = AnyConnectOptions::from_str(&url) else { return (tcp, None) };
    match tokio::join!(identity(&through_socket), identity(&tcp)) {
        (Ok(a), Ok(b)) if a == b => {
            tracing::info!(%socket, "PostgreSQL on this machine: connecting through its Unix socket");
            (through_socket, Some(socket))
        }
        (Ok(_), Ok(_)) => {
            tracing::warn!(
                %socket,
                "this Unix socket leads to another PostgreSQL server or schema than database_url; using its address"
            );
            (tcp, None)
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(%socket, error = %e, "PostgreSQL's Unix socket not usable; using database_url's address");
            (tcp, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sqlx::any::AnyConnectOptions;
    use sqlx::{AnyConnection, Connection};
    use tokio::net::{TcpStream, UnixListener, UnixStream};

    use super::{plain_on_loopback, prefer_socket_in};

    /// The PostgreSQL the tests run against, as [`plain_on_loopback`] would make its URL.
    fn test_server() -> Option<String> {
        let url = std::env::var("GATEHOUSE_TEST_POSTGRES_URL").ok()?;
        sqlx::any::install_default_drivers();
        let plain = plain_on_loopback(&url, false);
        if plain.is_none() {
            eprintln!("note: GATEHOUSE_TEST_POSTGRES_URL is not this machine with no sslmode; socket tests not run");
        }
        plain
    }

    /// A directory holding a socket `.s.PGSQL.PORT` for the test server's port, each connection
    /// to it counted and handed to `serve`.
    struct SocketDir {
        dir: tempfile::TempDir,
        connections: Arc<AtomicUsize>,
    }

    impl SocketDir {
        fn new<F: Future<Output = ()> + Send + 'static>(
            plain: &str,
            serve: impl Fn(UnixStream, u16) -> F + Send + 'static,
        ) -> Self {
            let port = sqlx::postgres::PgConnectOptions::from_str(plain).unwrap().get_port();
            let dir = tempfile::tempdir().unwrap();
            let listener = UnixListener::bind(dir.path().join(format!(".s.PGSQL.{port}"))).unwrap();
            let connections = Arc::new(AtomicUsize::new(0));
            let counted = connections.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(stream, port));
                }
            });
            Self { dir, connections }
        }

        /// A socket in front of the very server database_url names: a relay to its port (so
        /// the tests do not depend on how this machine authenticates socket users), as another
        /// user could also plant one.
        fn relay(plain: &str) -> Self {
            Self::new(plain, |mut unix, port| async move {
                let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut unix, &mut tcp).await;
            })
        }

        fn path(&self) -> &str {
            self.dir.path().to_str().unwrap()
        }

        /// Whether a connection made with `options` comes through this socket.
        async fn carries(&self, options: &AnyConnectOptions) -> bool {
            let before = self.connections.load(Ordering::SeqCst);
            let mut c = AnyConnection::connect_with(options).await.unwrap();
            let _: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut c).await.unwrap();
            self.connections.load(Ordering::SeqCst) > before
        }
    }

    #[tokio::test]
    async fn a_socket_that_reaches_the_same_server_is_preferred_and_any_other_is_not() {
        let Some(plain) = test_server() else { return };
        let tcp = AnyConnectOptions::from_str(&plain).unwrap();
        let same = SocketDir::relay(&plain);
        let (chosen, socket) = prefer_socket_in(&plain, tcp.clone(), &[same.path()]).await;
        assert!(socket.is_some_and(|s| s.starts_with(same.path())));
        assert!(same.carries(&chosen).await);
        // A socket that takes connections and never answers as PostgreSQL: database_url's address.
        let dead = SocketDir::new(&plain, |unix, _| async move { drop(unix) });
        let (chosen, socket) = prefer_socket_in(&plain, tcp.clone(), &[dead.path()]).await;
        assert_eq!(socket, None);
        assert!(dead.connections.load(Ordering::SeqCst) > 0, "the socket was tried");
        assert!(!dead.carries(&chosen).await);
        // The first usual directory holding a socket for the port is the one tried.
        let (chosen, _) = prefer_socket_in(&plain, tcp.clone(), &["/nonexistent", same.path(), dead.path()]).await;
        assert!(same.carries(&chosen).await);
    }

    #[tokio::test]
    async fn a_socket_in_a_directory_anyone_may_write_to_is_never_tried() {
        use std::os::unix::fs::PermissionsExt;
        let Some(plain) = test_server() else { return };
        let tcp = AnyConnectOptions::from_str(&plain).unwrap();
        // A relay to the very server, as another user could plant in /tmp: it would pass every
        // test of identity, and it would read the credentials.
        let planted = SocketDir::relay(&plain);
        std::fs::set_permissions(planted.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let (chosen, _) = prefer_socket_in(&plain, tcp.clone(), &[planted.path()]).await;
        assert_eq!(planted.connections.load(Ordering::SeqCst), 0, "nothing was sent to the planted socket");
        assert!(!planted.carries(&chosen).await);
        // Nor through a link: whoever may write the link may point it elsewhere later.
        let linked = tempfile::tempdir().unwrap();
        let name = std::fs::read_dir(planted.path()).unwrap().next().unwrap().unwrap().file_name();
        std::os::unix::fs::symlink(planted.dir.path().join(&name), linked.path().join(&name)).unwrap();
        let (chosen, _) = prefer_socket_in(&plain, tcp, &[linked.path().to_str().unwrap()]).await;
        assert_eq!(planted.connections.load(Ordering::SeqCst), 0, "nothing was sent through the link");
        assert!(!planted.carries(&chosen).await);
    }

    #[tokio::test]
    async fn a_socket_that_is_not_its_directorys_owners_is_never_tried() {
        let Some(plain) = test_server() else { return };
        if !nix::unistd::geteuid().is_root() {
            eprintln!("note: not root; a socket of another user cannot be made here");
            return;
        }
        // In a directory only its owner may write to, a socket of another user (here `nobody`)
        // was not put there by the directory's owner.
        let foreign = SocketDir::relay(&plain);
        let name = std::fs::read_dir(foreign.path()).unwrap().next().unwrap().unwrap().file_name();
        std::os::unix::fs::lchown(foreign.dir.path().join(name), Some(65534), None).unwrap();
        let (chosen, socket) =
            prefer_socket_in(&plain, AnyConnectOptions::from_str(&plain).unwrap(), &[foreign.path()]).await;
        assert_eq!((socket, foreign.connections.load(Ordering::SeqCst)), (None, 0), "nothing was sent to it");
        assert!(!foreign.carries(&chosen).await);
    }

    #[test]
    fn only_postgres_on_loopback_with_no_sslmode_chosen_goes_without_tls() {
        let plain = |url: &str| plain_on_loopback(url, false);
        assert_eq!(
            plain("postgres://gh@127.0.0.1:5432/gh").as_deref(),
            Some("postgres://gh@127.0.0.1:5432/gh?sslmode=disable")
        );
        assert_eq!(
            plain("postgres://gh@localhost/gh?options[search_path]=s").as_deref(),
            Some("postgres://gh@localhost/gh?options[search_path]=s&sslmode=disable")
        );
        assert!(plain("postgres://gh@[::1]/gh").is_some());
        assert!(plain("postgres://gh@127.8.9.10/gh").is_some());
        for kept in [
            "postgres://gh@127.0.0.1/gh?sslmode=require",
            "postgres://gh@127.0.0.1/gh?sslmode=prefer",
            "postgres://gh@db.example.com/gh",
            "postgres://gh@10.0.0.5/gh",
            "postgres://gh@localhost.example.com/gh",
            "postgres://gh@localhost/gh?host=/run/postgresql",
            "postgres://gh@localhost/gh?hostaddr=203.0.113.7",
        ] {
            assert_eq!(plain(kept), None, "{kept}");
        }
        // `PGSSLMODE` in the environment is a choice as much as `sslmode` in the URL.
        assert_eq!(plain_on_loopback("postgres://gh@127.0.0.1:5432/gh", true), None);
    }
}
