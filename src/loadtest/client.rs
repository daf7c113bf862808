//! The load generator's HTTP/1.1 client: keep-alive connections, one request at a time on
//! each, requests written from a reused buffer and answers parsed where they were read — no
//! allocation per request once a connection is warm.
//!
//! Through awc the generator spent about four times wrk's CPU on a request (19–22 µs against
//! 5, issue 13): a builder, a header map and a response object per request, a body collected
//! into fresh bytes. The engine's answers are small and sized (`Content-Length`); a chunked
//! answer is understood too, for completeness.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request: what varies from one to the next.
pub struct Request<'a> {
    pub path: &'a str,
    pub authorization: Option<&'a [u8]>,
    /// A JSON body (sent as POST); none: GET.
    pub body: Option<&'a [u8]>,
}

/// An answer, borrowed from its connection's buffer until the next request.
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

/// Answers longer than this are refused (the engine's are a few hundred bytes; a page of deals
/// a few KiB).
const ANSWER_MAX: usize = 4 * 1024 * 1024;

/// An idle connection older than this is closed instead of reused: below actix-web's default
/// keep-alive (5 s), so the engine never closes a connection just as a request is written on
/// it. A request sent on a connection the server had closed came back without an answer —
/// counted as lost, though the engine never saw it.
const IDLE_REUSE_MAX: Duration = Duration::from_secs(2);

/// Where requests go: one base URL's address and `Host` header.
#[derive(Debug, Clone)]
pub struct Target {
    address: SocketAddr,
    host: Vec<u8>,
}

/// The connections of one generator thread, idle ones kept per target for the next request.
pub struct Connections {
    targets: Vec<Target>,
    idle: RefCell<Vec<Vec<Connection>>>,
    timeout: Duration,
    /// `IDLE_REUSE_MAX`, but in tests.
    idle_reuse_max: Duration,
}

pub struct Connection {
    stream: TcpStream,
    /// The request being written; reused.
    out: Vec<u8>,
    /// The answer being read; reused.
    input: Vec<u8>,
    /// Where the last answer's body starts and ends in `input`.
    body: (usize, usize),
    /// The server said it closes the connection after this answer.
    closing: bool,
    /// When it went back to the idle ones.
    idle_since: Instant,
}

impl Connections {
    /// Resolves each base URL (`http://host:port`, already checked) once, before the load.
    pub async fn resolve(bases: &[String]) -> Result<Vec<Target>, String> {
        let mut targets = Vec::with_capacity(bases.len());
        for base in bases {
            let authority = base
                .strip_prefix("http://")
                .unwrap_or(base)
                .trim_end_matches('/');
            let address = tokio::net::lookup_host(authority)
                .await
                .ok()
                .and_then(|mut addresses| addresses.next())
                .ok_or_else(|| format!("--url {base}: {authority} has no address"))?;
            targets.push(Target {
                address,
                host: authority.as_bytes().to_vec(),
            });
        }
        Ok(targets)
    }

    pub fn new(targets: &[Target], timeout: Duration) -> Self {
        Self {
            idle: RefCell::new(targets.iter().map(|_| Vec::new()).collect()),
            targets: targets.to_vec(),
            timeout,
            idle_reuse_max: IDLE_REUSE_MAX,
        }
    }

    /// How many targets requests go to.
    pub fn targets(&self) -> usize {
        self.targets.len()
    }

    /// Sends `request` to target `target` on an idle connection (a new one when none is idle)
    /// and hands the answer to `read`. The connection goes back to the idle ones unless it
    /// failed or the server closes it. `None`: no answer (refused, reset, timed out).
    pub async fn exchange<T>(
        &self,
        target: usize,
        request: &Request<'_>,
        read: impl FnOnce(Answer<'_>) -> T,
    ) -> Option<T> {
        let mut connection = loop {
            let idle = self.idle.borrow_mut()[target].pop();
            match idle {
                // One idle too long, or one the server already closed, is dropped unused.
                Some(connection)
                    if connection.idle_since.elapsed() < self.idle_reuse_max
                        && connection.still_open() =>
                {
                    break connection;
                }
                Some(_) => continue,
                None => break self.connect(target).await?,
            }
        };
        let host = &self.targets[target].host;
        match tokio::time::timeout(self.timeout, connection.exchange(host, request)).await {
            Ok(Ok(status)) => {
                let (start, end) = connection.body;
                let value = read(Answer {
                    status,
                    body: &connection.input[start..end],
                });
                if !connection.closing {
                    connection.idle_since = Instant::now();
                    self.idle.borrow_mut()[target].push(connection);
                }
                Some(value)
            }
            _ => None,
        }
    }

    async fn connect(&self, target: usize) -> Option<Connection> {
        let connect = TcpStream::connect(self.targets[target].address);
        let stream = tokio::time::timeout(self.timeout, connect)
            .await
            .ok()?
            .ok()?;
        stream.set_nodelay(true).ok()?;
        Some(Connection {
            stream,
            out: Vec::with_capacity(512),
            input: Vec::with_capacity(8 * 1024),
            body: (0, 0),
            closing: false,
            idle_since: Instant::now(),
        })
    }
}

impl Connection {
    /// False when the server has closed it (or sent what nobody asked for) as far as this
    /// thread's reactor has seen; a check without waiting.
    fn still_open(&self) -> bool {
        let mut byte = [0; 1];
        matches!(self.stream.try_read(&mut byte), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes the request, reads one whole answer; returns its status.
    async fn exchange(&mut self, host: &[u8], request: &Request<'_>) -> io::Result<u16> {
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(if request.body.is_some() {
            b"POST "
        } else {
            b"GET "
        });
        out.extend_from_slice(request.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(host);
        if let Some(authorization) = request.authorization {
            out.extend_from_slice(b"\r\nAuthorization: ");
            out.extend_from_slice(authorization);
        }
        if let Some(body) = request.body {
            out.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
            out.extend_from_slice(itoa(body.len(), &mut [0; 20]));
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body);
        } else {
            out.extend_from_slice(b"\r\n\r\n");
        }
        self.stream.write_all(out).await?;
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> io::Result<u16> {
        self.input.clear();
        let mut searched = 0;
        let head = loop {
            self.fill().await?;
            if let Some(at) = find(&self.input[searched..], b"\r\n\r\n") {
                break searched + at + 4;
            }
            searched = self.input.len().saturating_sub(3);
        };
        let head_text = &self.input[..head];
        let status = parse_status(head_text)?;
        let mut length = None;
        let mut chunked = false;
        self.closing = false;
        for line in head_text.split(|&b| b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                length = Some(parse_number(value)?);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value.eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case(b"connection") {
                self.closing = value.eq_ignore_ascii_case(b"close");
            }
        }
        if chunked {
            return self.read_chunked(head).await.map(|()| status);
        }
        let length = length.unwrap_or(0);
        if length > ANSWER_MAX {
            return Err(io::Error::other("answer too long"));
        }
        while self.input.len() < head + length {
            self.fill().await?;
        }
        self.body = (head, head + length);
        Ok(status)
    }

    /// A chunked body, decoded in place after the head (rare: the engine sizes its answers).
    async fn read_chunked(&mut self, head: usize) -> io::Result<()> {
        let (mut read_at, mut write_at) = (head, head);
        loop {
            let line_end = loop {
                if let Some(at) = find(&self.input[read_at..], b"\r\n") {
                    break read_at + at;
                }
                self.fill().await?;
            };
            let size_text = self.input[read_at..line_end]
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default();
            let size = std::str::from_utf8(size_text)
                .ok()
                .and_then(|text| usize::from_str_radix(text.trim(), 16).ok())
                .ok_or_else(|| io::Error::other("bad chunk size"))?;
            if write_at - head + size > ANSWER_MAX {
                return Err(io::Error::other("answer too long"));
            }
            let data = line_end + 2;
            while self.input.len() < data + size + 2 {
                self.fill().await?;
            }
            self.input.copy_within(data..data + size, write_at);
            write_at += size;
            read_at = data + size + 2;
            if size == 0 {
                self.body = (head, write_at);
                return Ok(());
            }
        }
    }

    /// Reads what the socket has into `input`; an early end is an error.
    async fn fill(&mut self) -> io::Result<()> {
        if self.input.len() > ANSWER_MAX + 64 * 1024 {
            return Err(io::Error::other("answer too long"));
        }
        self.input.reserve(8 * 1024);
        if self.stream.read_buf(&mut self.input).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// `HTTP/1.1 201 Created` → 201.
fn parse_status(head: &[u8]) -> io::Result<u16> {
    match head.get(..12) {
        Some([b'H', b'T', b'T', b'P', b'/', _, b'.', _, b' ', digits @ ..]) => {
            let number = parse_number(digits)?;
            u16::try_from(number).map_err(|_| io::Error::other("bad status"))
        }
        _ => Err(io::Error::other("not an HTTP/1.x answer")),
    }
}

fn parse_number(digits: &[u8]) -> io::Result<usize> {
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(io::Error::other("bad number"));
    }
    Ok(digits
        .iter()
        .fold(0, |n, digit| n * 10 + usize::from(digit - b'0')))
}

/// `n` in decimal, in `buffer`.
fn itoa(mut n: usize, buffer: &mut [u8; 20]) -> &[u8] {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buffer[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use tokio::net::TcpListener;

    use super::*;

    /// A server on loopback that answers the requests it reads with `answers`, in turn, over
    /// whatever connections come; it records each request's first line and body, and how many
    /// connections it accepted.
    async fn serve(
        answers: Vec<&'static [u8]>,
    ) -> (
        String,
        Rc<RefCell<Vec<(String, Vec<u8>)>>>,
        Rc<RefCell<usize>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Rc::new(RefCell::new(Vec::new()));
        let accepted = Rc::new(RefCell::new(0));
        let answers = Rc::new(RefCell::new(answers.into_iter()));
        let (seen_by_server, accepted_by_server) = (seen.clone(), accepted.clone());
        actix_web::rt::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                *accepted_by_server.borrow_mut() += 1;
                let (seen, answers) = (seen_by_server.clone(), answers.clone());
                actix_web::rt::spawn(async move {
                    let mut input = Vec::new();
                    loop {
                        let Some(head) = find(&input, b"\r\n\r\n") else {
                            if stream.read_buf(&mut input).await.unwrap_or(0) == 0 {
                                return;
                            }
                            continue;
                        };
                        let head_text = String::from_utf8_lossy(&input[..head]).to_lowercase();
                        let length = head_text
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length: "))
                            .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                        while input.len() < head + 4 + length {
                            stream.read_buf(&mut input).await.unwrap();
                        }
                        let first = head_text.lines().next().unwrap_or_default().to_owned();
                        let body = input[head + 4..head + 4 + length].to_vec();
                        input.drain(..head + 4 + length);
                        seen.borrow_mut().push((first, body));
                        let answer = answers.borrow_mut().next().expect("an answer left");
                        stream.write_all(answer).await.unwrap();
                        if find(answer, b"Connection: close").is_some() {
                            return;
                        }
                    }
                });
            }
        });
        (base, seen, accepted)
    }

    /// Keep-alive reuse, a sized and a chunked body, and a server closing after its answer:
    /// each answer read whole, the request written whole, a new connection only when needed.
    #[actix_web::test]
    async fn answers_are_read_whole_and_connections_reused_until_closed() {
        let (base, seen, accepted) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"id\r\n5\r\n\":42}\r\n0\r\n\r\n",
            b"HTTP/1.1 409 Conflict\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let targets = Connections::resolve(&[base]).await.unwrap();
        let connections = Connections::new(&targets, Duration::from_secs(5));
        let get = Request {
            path: "/livez",
            authorization: None,
            body: None,
        };
        let read = |answer: Answer<'_>| (answer.status, answer.body.to_vec());
        assert_eq!(
            connections.exchange(0, &get, read).await,
            Some((200, b"hello".to_vec()))
        );
        let post = Request {
            path: "/api/v1/orders",
            authorization: Some(b"Bearer t"),
            body: Some(br#"{"deal_id":7}"#),
        };
        assert_eq!(
            connections.exchange(0, &post, read).await,
            Some((201, br#"{"id":42}"#.to_vec()))
        );
        assert_eq!(
            connections.exchange(0, &get, read).await,
            Some((409, b"no".to_vec()))
        );
        assert_eq!(
            connections.exchange(0, &get, read).await,
            Some((200, Vec::new()))
        );
        assert_eq!(
            *accepted.borrow(),
            2,
            "one connection until the server closed it"
        );
        let seen = seen.borrow();
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[1].0, "post /api/v1/orders http/1.1");
        assert_eq!(seen[1].1, br#"{"deal_id":7}"#);
        assert_eq!(seen[0].0, "get /livez http/1.1");
    }

    /// A connection idle for longer than the bound is not reused: a new one carries the
    /// request (the server's keep-alive may have closed the old one meanwhile).
    #[actix_web::test]
    async fn a_connection_idle_too_long_is_not_reused() {
        let ok: &'static [u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let (base, seen, accepted) = serve(vec![ok, ok, ok]).await;
        let targets = Connections::resolve(&[base]).await.unwrap();
        let get = Request {
            path: "/livez",
            authorization: None,
            body: None,
        };
        let status = |answer: Answer<'_>| answer.status;
        let mut connections = Connections::new(&targets, Duration::from_secs(5));
        assert_eq!(connections.exchange(0, &get, status).await, Some(200));
        assert_eq!(connections.exchange(0, &get, status).await, Some(200));
        assert_eq!(*accepted.borrow(), 1, "reused while fresh");
        connections.idle_reuse_max = Duration::ZERO;
        assert_eq!(connections.exchange(0, &get, status).await, Some(200));
        assert_eq!(*accepted.borrow(), 2, "a new connection for the request");
        assert_eq!(seen.borrow().len(), 3);
    }

    #[test]
    fn status_lines_and_numbers_parse() {
        assert_eq!(parse_status(b"HTTP/1.1 201 Created\r\n").unwrap(), 201);
        assert_eq!(parse_status(b"HTTP/1.0 409 Conflict\r\n").unwrap(), 409);
        assert!(parse_status(b"HTTP/2 200\r\n").is_err());
        assert!(parse_number(b"12a").is_err());
        assert_eq!(itoa(0, &mut [0; 20]), b"0");
        assert_eq!(itoa(1234, &mut [0; 20]), b"1234");
    }
}
