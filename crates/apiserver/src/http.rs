//! The HTTP side: TLS accept loop, authentication, routing of REST paths to the cluster,
//! and the exec/attach upgrade.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::auth::{self, Attributes, Decision, Tokens, User};
use crate::cluster::Cluster;
use crate::discovery::{self, Resource};
use crate::objects::{self, pod};
use crate::request_log::{ApiRequest, RequestKind, RequestLog};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::stream::channel::Protocol;
use crate::stream::{exec, websocket};
use crate::{paging, protobuf, review, table, watch};

pub type Body = BoxBody<Bytes, Infallible>;

pub struct Server {
    pub cluster: Arc<Cluster>,
    pub tokens: Tokens,
    pub url_host: String,
    /// Restarts ([`crate::ApiServer::restart`]): every connection, streams
    /// included, ends when the generation changes.
    pub restarts: tokio::sync::watch::Receiver<u64>,
    /// Until then, a restarted server is not up yet: connections are dropped.
    pub down_until: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    pub log: RequestLog,
}

pub async fn serve(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); tokio::time::sleep(Duration::from_millis(50)).await; continue }
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        };
        let down = server
            .down_until
            .lock()
            .unwrap()
            .is_some_and(|t| t > std::time::Instant::now());
        if down {
            // Restarting: as if nothing listened yet.
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let server = server.clone();
        let mut restarts = server.restarts.clone();
        // Only a restart after this connection began ends it.
        restarts.mark_unchanged();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(handle(server, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = restarts.changed() => {}
            }
        });
    }
}

pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(v.to_string())).boxed())
        .expect("valid response")
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// Query parameters, percent-decoded, repeated keys kept in order.
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            let b = s.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%'
                    && i + 2 < b.len()
                    && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        Query(
            q.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// A REST path: which resource, where, and which object/subresource.
struct Target {
    res: &'static Resource,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let (group, rest) = if let Some(r) = path.strip_prefix("/api/v1") {
        ("", r)
    } else if let Some(r) = path.strip_prefix("/apis/apps/v1") {
        ("apps", r)
    } else {
        return None;
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let t = |res: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Some(Target {
            res: discovery::find(group, res)?,
            namespace: ns.map(String::from),
            name: name.map(String::from),
            sub: sub.map(String::from),
        })
    };
    match segs.as_slice() {
        ["namespaces", ns, res, rest @ ..]
            if discovery::find(group, res).is_some_and(|r| r.namespaced) =>
        {
            t(res, Some(ns), rest.first().copied(), rest.get(1).copied())
        }
        [res] => t(res, None, None, None),
        [res, name] => t(res, None, Some(name), None),
        [res, name, sub] => t(res, None, Some(name), Some(sub)),
        _ => None,
    }
}

fn not_found_path(path: &str) -> Response<Body> {
    error_response(&ApiError::new(
        404,
        "NotFound",
        format!("the server could not find the requested resource ({path})"),
    ))
}

pub async fn handle(server: Arc<Server>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return Response::new(Full::new(Bytes::from_static(b"ok")).boxed());
    }
    let authz = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let user = match server.tokens.authenticate(authz) {
        Ok(u) => u,
        Err(e) => return refuse(req, error_response(&e)).await,
    };
    let mut entry = ApiRequest {
        user: user.name().to_string(),
        method: req.method().to_string(),
        path: path.clone(),
        query: req.uri().query().unwrap_or("").to_string(),
        kind: RequestKind::Change,
        verb: String::new(),
        group: String::new(),
        resource: String::new(),
        subresource: None,
        namespace: None,
        name: None,
        status: 0,
        review: None,
    };
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let response = handle_as(&server, user, req, &mut entry).await;
    if !reads || entry.kind == RequestKind::Exec {
        entry.status = response.status().as_u16();
        server.log.record(&entry);
    }
    response
}

/// Answers an authenticated request, noting in `entry` what it is (for the log).
async fn handle_as(
    server: &Arc<Server>,
    user: User,
    req: Request<Incoming>,
    entry: &mut ApiRequest,
) -> Response<Body> {
    let path = entry.path.clone();
    let discovery_doc = match path.trim_end_matches('/') {
        "/version" => Some(discovery::version()),
        "/api" => Some(discovery::api_versions(&server.url_host)),
        "/apis" => Some(discovery::api_groups()),
        "/api/v1" => Some(discovery::resource_list("", &server.cluster.features)),
        p => p
            .strip_prefix("/apis/")
            .and_then(|p| match p.split_once('/') {
                None => discovery::api_group(p),
                Some((g, "v1")) if discovery::GROUPS.contains(&g) => {
                    Some(discovery::resource_list(g, &server.cluster.features))
                }
                Some(_) => None,
            }),
    };
    if let Some(doc) = discovery_doc {
        // Non-resource requests are authorized by their lowercase HTTP method.
        let verb = entry.method.to_ascii_lowercase();
        if auth::decide_path(user, &verb) == Decision::NoRuleAllows {
            let e = ApiError::forbidden_path(user.name(), &verb, &path);
            return refuse(req, error_response(&e)).await;
        }
        // Plain JSON even to an aggregated-discovery Accept: kubectl then uses these.
        return json_response(200, &doc);
    }
    if path.trim_end_matches('/') == review::PATH {
        return match access_review(user, req, entry).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        };
    }
    let Some(target) = parse_path(&path) else {
        return refuse(req, not_found_path(&path)).await;
    };
    let query = Query::parse(req.uri().query());
    let verb = match (req.method().clone(), &target.name, target.sub.as_deref()) {
        (Method::GET, None, _) if query.flag("watch") => "watch",
        (Method::GET, None, _) => "list",
        (Method::GET, Some(_), Some("exec" | "attach")) => "create",
        (Method::GET, Some(_), _) => "get",
        (Method::POST, _, _) => "create",
        (Method::DELETE, Some(_), _) => "delete",
        (Method::DELETE, None, _) => "deletecollection",
        (Method::PATCH, _, _) => "patch",
        (Method::PUT, _, _) => "update",
        _ => "unknown",
    };
    let (ns, name) = (target.namespace.as_deref(), target.name.as_deref());
    *entry = ApiRequest {
        kind: if matches!(target.sub.as_deref(), Some("exec" | "attach")) {
            RequestKind::Exec
        } else {
            RequestKind::Change
        },
        verb: verb.to_string(),
        group: target.res.group.to_string(),
        resource: target.res.plural.to_string(),
        subresource: target.sub.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        ..entry.clone()
    };
    // A namespace object's own namespace is itself, for the authorizer's wording.
    if let Err(e) = auth::authorize(
        user,
        &Attributes {
            verb,
            group: target.res.group,
            resource: target.res.plural,
            subresource: target.sub.as_deref(),
            namespace: ns,
            name,
        },
    ) {
        return refuse(req, error_response(&e)).await;
    }
    // An old cluster has no such subresource: its router answers before any handler
    // (after authorization, which judges the request path alone).
    if target.sub.as_deref() == Some("ephemeralcontainers")
        && target.res.plural == "pods"
        && !server.cluster.features.ephemeral_containers
    {
        return refuse(req, error_response(&ApiError::path_not_found())).await;
    }
    match route(server, req, target, query, verb).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

/// Sends `response` without handling `req`, once its body is read (up to 1 MiB) and
/// dropped: a client still sending one would otherwise see its connection reset
/// instead of the answer.
async fn refuse(req: Request<Incoming>, response: Response<Body>) -> Response<Body> {
    let _ = http_body_util::Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await;
    response
}

/// `POST .../selfsubjectaccessreviews`: the authorizer's answer for the caller.
async fn access_review(
    user: User,
    req: Request<Incoming>,
    entry: &mut ApiRequest,
) -> Result<Response<Body>, ApiError> {
    let verb = match *req.method() {
        Method::POST => "create",
        Method::GET => "list",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    };
    *entry = ApiRequest {
        kind: RequestKind::AccessReview,
        verb: verb.to_string(),
        group: discovery::AUTHORIZATION_GROUP.to_string(),
        resource: review::RESOURCE.to_string(),
        ..entry.clone()
    };
    auth::authorize(
        user,
        &Attributes {
            verb,
            group: discovery::AUTHORIZATION_GROUP,
            resource: review::RESOURCE,
            subresource: None,
            namespace: None,
            name: None,
        },
    )?;
    if verb != "create" {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let (ct, body) = read_json(req).await?;
    // kubectl's typed client sends protobuf (and accepts the JSON answer).
    let asked = if ct.starts_with(protobuf::CONTENT_TYPE) {
        protobuf::self_subject_access_review(&body)?
    } else {
        parse_body(&body)?
    };
    let (answer, question) = review::answer(user, asked)?;
    entry.review = Some(question);
    Ok(json_response(201, &answer))
}

async fn read_json(req: Request<Incoming>) -> Result<(String, Bytes), ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .to_bytes();
    Ok((ct, body))
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    Ok(v)
}

async fn route(
    server: &Arc<Server>,
    req: Request<Incoming>,
    t: Target,
    q: Query,
    verb: &str,
) -> Result<Response<Body>, ApiError> {
    let cluster = &server.cluster;
    let res = t.res;
    let display = res.display();
    let ns_key = if res.namespaced {
        t.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .map(String::from);
    let as_table = table::wants_table(accept.as_deref());
    let get_obj = |name: &str| -> Result<Value, ApiError> {
        if res.namespaced && cluster.store.get("namespaces", "", &ns_key).is_none() {
            return Err(ApiError::not_found("namespaces", &ns_key));
        }
        cluster
            .store
            .get(res.plural, &ns_key, name)
            .ok_or_else(|| ApiError::not_found(&display, name))
    };
    match (verb, t.name.as_deref(), t.sub.as_deref()) {
        ("list", None, _) => {
            let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
            let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))?;
            let (items, rv) = cluster.store.list(res.plural, t.namespace.as_deref());
            let items: Vec<Value> = items
                .into_iter()
                .filter(|o| labels.matches(o) && fields.matches(o))
                .collect();
            let page = paging::page(items, q.get("limit"), q.get("continue"))?;
            let mut list = if as_table {
                table::table(res.plural, &page.items, rv)
            } else {
                json!({
                    "kind": format!("{}List", res.kind),
                    "apiVersion": res.api_version(),
                    "metadata": {"resourceVersion": rv.to_string()},
                    "items": page.items,
                })
            };
            if let Some(next) = page.next {
                list["metadata"]["continue"] = json!(next);
            }
            Ok(json_response(200, &list))
        }
        ("watch", None, _) => {
            let from = match q.get("resourceVersion").unwrap_or("") {
                "" | "0" => None,
                s => Some(s.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {s:?}"))
                })?),
            };
            let timeout = q
                .get("timeoutSeconds")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(1800);
            let body = watch::start(
                &cluster.store,
                watch::WatchRequest {
                    resource: res.plural,
                    namespace: t.namespace.clone(),
                    labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
                    fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))?,
                    from,
                    timeout: Duration::from_secs(timeout),
                    table: as_table,
                    bookmarks: q.flag("allowWatchBookmarks"),
                },
            )?;
            Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CACHE_CONTROL, "no-cache, private")
                .body(body)
                .expect("valid response"))
        }
        ("get", Some(name), None) => {
            let o = get_obj(name)?;
            if as_table {
                let rv = o["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                return Ok(json_response(200, &table::table(res.plural, &[o], rv)));
            }
            Ok(json_response(200, &o))
        }
        ("get", Some(name), Some("status" | "ephemeralcontainers")) => {
            Ok(json_response(200, &get_obj(name)?))
        }
        ("get", Some(name), Some("scale")) => Ok(json_response(
            200,
            &crate::objects::workload::scale(&get_obj(name)?),
        )),
        ("get", Some(name), Some("log")) if res.plural == "pods" => {
            let pod = get_obj(name)?;
            let container = q.get("container").map(String::from).unwrap_or_else(|| {
                pod["spec"]["containers"][0]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            });
            if pod::find_container(&pod, &container).is_none() {
                return Err(ApiError::bad_request(format!(
                    "container {container} is not valid for pod {name}"
                )));
            }
            let log = cluster
                .hub(&ns_key, name, &container)
                .map(|h| h.log())
                .unwrap_or_default();
            Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Full::new(Bytes::from(log)).boxed())
                .expect("valid"))
        }
        ("create", Some(name), Some(sub @ ("exec" | "attach"))) if res.plural == "pods" => {
            stream_upgrade(server, req, &ns_key, name, sub, &q).await
        }
        ("create", None, None) => {
            let (_, body) = read_json(req).await?;
            let mut obj = parse_body(&body)?;
            if let (Some(ns), Some(body_ns)) = (&t.namespace, obj["metadata"]["namespace"].as_str())
                && ns != body_ns
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            if !obj["metadata"].is_object() {
                obj["metadata"] = json!({});
            }
            let created = cluster.create(res, &ns_key, obj)?;
            Ok(json_response(201, &created))
        }
        ("delete", Some(name), None) => {
            if res.namespaced {
                get_obj(name)?;
            }
            Ok(json_response(200, &cluster.delete(res, &ns_key, name)?))
        }
        ("patch", Some(name), Some("ephemeralcontainers")) if res.plural == "pods" => {
            get_obj(name)?;
            let (ct, body) = read_json(req).await?;
            Ok(json_response(
                200,
                &cluster.patch_ephemeral(&ns_key, name, &ct, &body)?,
            ))
        }
        ("patch", Some(name), Some("scale")) | ("update", Some(name), Some("scale"))
            if matches!(res.plural, "deployments" | "replicasets" | "statefulsets") =>
        {
            let before = get_obj(name)?;
            let (ct, body) = read_json(req).await?;
            let mut scale = crate::objects::workload::scale(&before);
            if verb == "patch" {
                crate::patch::apply(&mut scale, &ct, &body)?;
            } else {
                scale = parse_body(&body)?;
            }
            let replicas = scale["spec"]["replicas"]
                .as_u64()
                .ok_or_else(|| ApiError::new(422, "Invalid", "spec.replicas: Required value"))?;
            let after = cluster.replace(
                res,
                &ns_key,
                name,
                |o| {
                    o["spec"]["replicas"] = json!(replicas);
                    Ok(())
                },
                false,
            )?;
            Ok(json_response(200, &crate::objects::workload::scale(&after)))
        }
        ("patch", Some(name), sub @ (None | Some("status"))) => {
            get_obj(name)?;
            let (ct, body) = read_json(req).await?;
            let out = cluster.replace(
                res,
                &ns_key,
                name,
                |o| crate::patch::apply(o, &ct, &body),
                sub.is_some(),
            )?;
            Ok(json_response(200, &out))
        }
        ("update", Some(name), sub @ (None | Some("status"))) => {
            get_obj(name)?;
            let (_, body) = read_json(req).await?;
            let new = parse_body(&body)?;
            let out = cluster.replace(
                res,
                &ns_key,
                name,
                |o| {
                    *o = new;
                    Ok(())
                },
                sub.is_some(),
            )?;
            Ok(json_response(200, &out))
        }
        ("create", Some(_), Some("exec" | "attach")) => Err(spdy_refused()),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb} {display})"
        ))),
    }
}

fn spdy_refused() -> ApiError {
    ApiError::bad_request(
        "SPDY is not supported by this API server; use the WebSocket protocol (v5.channel.k8s.io or v4.channel.k8s.io)",
    )
}

/// Validates an exec/attach request, answers 101 and runs the session on the upgraded
/// connection.
async fn stream_upgrade(
    server: &Arc<Server>,
    mut req: Request<Incoming>,
    ns: &str,
    name: &str,
    sub: &str,
    q: &Query,
) -> Result<Response<Body>, ApiError> {
    let cluster = server.cluster.clone();
    if cluster.store.get("namespaces", "", ns).is_none() {
        return Err(ApiError::not_found("namespaces", ns));
    }
    let pod = cluster
        .store
        .get("pods", ns, name)
        .ok_or_else(|| ApiError::not_found("pods", name))?;
    let headers = req.headers();
    let is_ws = headers
        .get(header::UPGRADE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let container = match q.get("container") {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => pod["spec"]["containers"][0]["name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    };
    if pod::find_container(&pod, &container).is_none() {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let ephemeral = pod["spec"]["containers"]
        .as_array()
        .is_none_or(|cs| !cs.iter().any(|c| c["name"] == container.as_str()));
    let hub = if ephemeral {
        cluster.hub(ns, name, &container)
    } else {
        None
    };
    let running = if ephemeral {
        hub.as_ref().is_some_and(|h| h.is_running())
    } else {
        pod::is_running(&pod) && !objects::is_deleting(&pod)
    };
    if !running {
        return Err(ApiError::bad_request(format!(
            "container {container} is not running in pod {name}"
        )));
    }
    // Checked after the pod and container so kubectl's SPDY retry shows those errors.
    if req.method() != Method::GET || !is_ws {
        return Err(spdy_refused());
    }
    if sub == "attach" && !ephemeral {
        return Err(ApiError::bad_request(
            "attach is only supported for ephemeral containers in this test bed",
        ));
    }
    let proto = Protocol::negotiate(
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|h| h.to_str().ok()),
    )
    .ok_or_else(|| {
        ApiError::bad_request(
            "no supported subprotocol offered (want v5.channel.k8s.io or v4.channel.k8s.io)",
        )
    })?;
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let argv = q.all("command");
    if sub == "exec" && argv.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (stdin, stdout, stderr, tty) = (
        q.flag("stdin"),
        q.flag("stdout"),
        q.flag("stderr"),
        q.flag("tty"),
    );
    let exec_req = exec::ExecRequest {
        namespace: ns.into(),
        pod: name.into(),
        container,
        argv,
        stdin,
        stdout,
        stderr,
        tty,
    };
    let is_exec = sub == "exec";
    let mut restarts = server.restarts.clone();
    restarts.mark_unchanged();
    tokio::spawn(async move {
        let session = async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => return tracing::warn!(error = %e, "upgrade failed"),
            };
            let ws = websocket::accept(upgraded).await;
            if is_exec {
                exec::run(cluster, ws, proto, exec_req).await;
            } else if let Some(hub) = hub {
                hub.attach(ws, proto, stdin, stdout, stderr && !tty).await;
            }
        };
        // A restart cuts the stream, as a real API server's restart does.
        tokio::select! {
            _ = session => {}
            _ = restarts.changed() => {}
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&accept).expect("base64 is a valid header"),
        )
        .header(header::SEC_WEBSOCKET_PROTOCOL, proto.name())
        .body(Full::new(Bytes::new()).boxed())
        .expect("valid response"))
}
