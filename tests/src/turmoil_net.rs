//! The two pieces that put the real server and the real HTTP client on turmoil's network: a
//! [`Connector`] over `turmoil::net::TcpStream` for the runtime's one HTTP client, and an
//! `axum::serve::Listener` over `turmoil::net::TcpListener` for the real router.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::Uri;
use hyper_util::rt::TokioIo;
use sapix_runtime::http::Connector;

/// Connects to a URI's host (a turmoil host name) and port over turmoil's TCP.
pub fn connector() -> Connector {
    Connector::new(|uri: Uri| async move {
        let host = uri
            .host()
            .ok_or_else(|| io::Error::other("URI without a host"))?
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        let stream = turmoil::net::TcpStream::connect((host, port)).await?;
        Ok(TokioIo::new(stream))
    })
}

/// A turmoil listener that axum can serve on.
pub struct Listener(pub turmoil::net::TcpListener);

impl Listener {
    /// Binds `0.0.0.0:port` on the current turmoil host.
    pub async fn bind(port: u16) -> io::Result<Self> {
        Ok(Listener(
            turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?,
        ))
    }
}

impl axum::serve::Listener for Listener {
    type Io = turmoil::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok(accepted) => return accepted,
                // As axum's own TCP listener does: back off instead of spinning on an error.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}
