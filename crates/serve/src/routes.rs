//! What the server answers: `/` (a short page), `/capture.pcapng` (the live
//! stream over HTTP), `/ws` (the same over WebSocket), `/status` (JSON). Every
//! route checks the token first when there is one; every answer closes its
//! connection (a stream lasts as long as the capture, and a finished capture
//! must not wait for idle keep-alive connections).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::body::CaptureBody;
use crate::hub::Hub;

pub type Body = BoxBody<Bytes, std::io::Error>;

/// What every request needs to be answered.
pub struct Routes {
    pub hub: Arc<Hub>,
    pub token: Option<String>,
    /// `http://127.0.0.1:9090`: the base of the URLs on the page.
    pub base: String,
    pub websocket_base: String,
}

impl Routes {
    pub fn answer(&self, mut request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        if !self.authorized(&request) {
            tracing::warn!("viewer {peer}: refused, wrong or missing token");
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                "401: this capture needs its token: Authorization: Bearer TOKEN, or ?token=TOKEN\n",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kcap\""),
            );
            return closing(response);
        }
        if request.method() != Method::GET {
            return closing(text(
                StatusCode::METHOD_NOT_ALLOWED,
                "405: only GET is served\n",
            ));
        }
        let response = match request.uri().path() {
            "/" => text(StatusCode::OK, &self.page()),
            "/status" => json(&self.hub.status()),
            "/capture.pcapng" => self.capture(peer),
            "/ws" => self.websocket(&mut request, peer),
            _ => text(
                StatusCode::NOT_FOUND,
                "404: kcap serves /capture.pcapng, /ws, /status and /\n",
            ),
        };
        closing(response)
    }

    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let query = request.uri().query().into_iter().flat_map(|q| {
            q.split('&')
                .filter_map(|pair| pair.strip_prefix("token="))
                .collect::<Vec<_>>()
        });
        bearer
            .into_iter()
            .chain(query)
            .any(|given| same(given.as_bytes(), token.as_bytes()))
    }

    fn page(&self) -> String {
        let status = self.hub.status();
        let mut page = String::from("kcap: a live capture\n\ntargets:\n");
        for target in &status.targets {
            page.push_str(&format!("  {}\n", target.name));
        }
        page.push_str(&format!(
            "\npcapng over HTTP:  {base}/capture.pcapng\n\
             pcapng over WebSocket:  {ws}/ws\n\
             figures (JSON):  {base}/status\n\n\
             curl -sN {base}/capture.pcapng | wireshark -k -i -\n\
             kcap --connect {ws}/ws --wireshark\n",
            base = self.base,
            ws = self.websocket_base,
        ));
        if status.ended {
            page.push_str("\nThe capture has ended.\n");
        }
        page
    }

    fn capture(&self, peer: SocketAddr) -> Response<Body> {
        let Some(subscription) = self.hub.subscribe() else {
            return ended();
        };
        tracing::info!("viewer {peer} joined (HTTP)");
        let body = CaptureBody::new(subscription, peer.to_string());
        let mut response = Response::new(body.boxed());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-pcapng"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    fn websocket(&self, request: &mut Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let headers = request.headers();
        let upgrade = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).filter(|_| upgrade) else {
            return text(
                StatusCode::UPGRADE_REQUIRED,
                "426: /ws is a WebSocket; for plain HTTP use /capture.pcapng\n",
            );
        };
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let Some(subscription) = self.hub.subscribe() else {
            return ended();
        };
        tracing::info!("viewer {peer} joined (WebSocket)");
        let on_upgrade = hyper::upgrade::on(request);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    crate::websocket::stream(upgraded, subscription, peer.to_string()).await
                }
                Err(e) => tracing::warn!("viewer {peer}: WebSocket upgrade failed: {e}"),
            }
        });
        let mut response = Response::new(empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&accept).expect("base64 is a header value"),
        );
        response
    }
}

/// Compares without stopping at the first difference (a token is a secret).
fn same(given: &[u8], token: &[u8]) -> bool {
    given.len() == token.len() && given.iter().zip(token).fold(0, |d, (a, b)| d | (a ^ b)) == 0
}

fn closing(mut response: Response<Body>) -> Response<Body> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn ended() -> Response<Body> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "503: the capture has ended\n",
    )
}

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_owned()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec_pretty(value).expect("status serializes");
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc123", b"abc123"));
        assert!(!same(b"abc12", b"abc123"));
        assert!(!same(b"abc124", b"abc123"));
        assert!(!same(b"", b"abc123"));
    }
}
