//! The engine's listening socket: bound as `TcpListener::bind` would, but with a backlog of
//! our choosing.

use std::net::{SocketAddr, TcpListener};

/// Connections the kernel holds for the engine before its accept loop takes them (the kernel
/// caps it at `net.core.somaxconn`, 4096 by default). std's `TcpListener::bind` asks for 128: a
/// burst of buyers connecting at once — a flash sale's opening, or a load generator opening
/// connections while others wait — overflowed it, and every connection refused that way
/// waited for its SYN to be sent again a second later (a ~1 s latency at random in open-loop
/// runs, with the kernel's `ListenOverflows` counting them; docs/BENCHMARKS.md). actix-web's
/// own `bind` would ask for 2048; this asks for what the kernel allows by default.
const LISTEN_BACKLOG: i32 = 4096;

/// Listens on the first address `bind` resolves to that can be bound, as
/// `TcpListener::bind` does, with `LISTEN_BACKLOG`.
pub fn listen(bind: &str) -> std::io::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let mut failed = None;
    for address in bind.to_socket_addrs()? {
        match listen_on(address) {
            Ok(listener) => return Ok(listener),
            Err(error) => failed = Some(error),
        }
    }
    Err(failed.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

fn listen_on(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    // As std's bind does on Unix: a restarted engine binds while old connections linger.
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}
