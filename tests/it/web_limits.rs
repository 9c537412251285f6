//! Slow and hoarding clients against the real accept loop: half-open connections, idle
//! keep-alive connections, bodies that never arrive, and more connections than allowed. Other
//! clients come from 127.0.0.1; the hoarders from other loopback addresses (127.0.0.0/8 is all
//! loopback on Linux), as a flood from one host on the Internet would.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::web::{Backend, PASSWORD, Server};

/// How long a test waits for something the server must do before calling it a failure.
const BOUND: Duration = Duration::from_secs(15);

/// A connection from `from` that sends half a request and then nothing.
async fn half_open(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0)).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    stream.write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow").await.unwrap();
    stream
}

/// Everything the server sends until it closes the connection (bounded by [`BOUND`]).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection in time")
        .unwrap_or_default();
    String::from_utf8_lossy(&answer).into_owned()
}

/// A metric's value from `/metrics`.
async fn metric(server: &Server, name: &str) -> f64 {
    let text = server.browser().get("metrics").await.body;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
}

#[tokio::test]
async fn half_open_flood_from_one_address_leaves_the_service_to_everyone_else() {
    let server = Server::start(Backend::Sqlite, "server: { max_connections_per_ip: 50, header_timeout: \"60s\" }\n")
        .await
        .unwrap();
    server.client_with_owner("ann@example.com", "Ann Ltd").await;

    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(half_open("127.0.0.2", server.addr).await);
    }
    // The first 50 are held (and time out later); every one after is told why and closed.
    let mut refused = 0;
    for stream in &mut flood[50..] {
        let answer = read_until_closed(stream).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("Retry-After: 5"), "{answer}");
        refused += 1;
    }
    assert_eq!(refused, 150);
    assert_eq!(metric(&server, "gatehouse_connections_refused_total").await, 150.0);
    assert!(metric(&server, "gatehouse_connections_open").await >= 50.0);

    // Meanwhile another address is served as usual: the probe, and a whole login.
    let browser = server.browser();
    assert_eq!(browser.get("healthz").await.status, 200);
    let login = browser.login("ann@example.com", PASSWORD).await;
    assert_eq!(login.status, 303);
    assert_eq!(login.location(), "/clientarea");
    assert_eq!(browser.get("clientarea").await.status, 200);
}

#[tokio::test]
async fn headers_that_never_finish_and_idle_kept_alive_connections_are_closed() {
    let server = Server::start(Backend::Sqlite, "server: { header_timeout: \"1s\" }\n").await.unwrap();

    let mut slow = half_open("127.0.0.1", server.addr).await;
    assert_eq!(read_until_closed(&mut slow).await, "", "closed without an answer");

    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "served first, then closed when idle: {answer}");
}

#[tokio::test]
async fn a_body_that_stops_arriving_ends_the_request() {
    let server = Server::start(Backend::Sqlite, "server: { body_timeout: \"1s\" }\n").await.unwrap();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\nConnection: close\r\n\r\nemail=a",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    let status: u16 = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(status, 408, "a body that stopped arriving is a timeout: {answer}");
}

#[tokio::test]
async fn over_max_connections_new_connections_get_503_until_some_close() {
    let server =
        Server::start(Backend::Sqlite, "server: { max_connections: 20, header_timeout: \"60s\" }\n").await.unwrap();
    // Twenty hosts, one connection each: the per-address limit is not what stops the next one.
    let mut held = Vec::new();
    for host in 2..22 {
        held.push(half_open(&format!("127.0.0.{host}"), server.addr).await);
    }
    let full = server.browser().get("healthz").await;
    assert_eq!(full.status, 503);
    assert_eq!(full.headers["retry-after"], "5");

    drop(held);
    // The server notices the closed connections as soon as it reads their end.
    let served = tokio::time::timeout(BOUND, async {
        loop {
            if server.browser().get("healthz").await.status == 200 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(served.is_ok(), "served again once the held connections closed");
}
