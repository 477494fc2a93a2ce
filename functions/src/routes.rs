//! Every endpoint: its function name (the Lambda binary and SAM resource),
//! method, path and handler. The local server routes with this table; the
//! per-endpoint binaries name their handler from it.

use std::future::Future;
use std::pin::Pin;

use http::Method;
use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::api::{access, configurations, deliveries, sessions, webhooks, workflows};
use crate::app::App;
use crate::http::respond;

pub type Handler = fn(App, Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// Adapts `async fn(&App, Request) -> ApiResult` into a [`Handler`].
#[macro_export]
macro_rules! handler {
    ($f:path) => {{
        fn handle(
            app: $crate::app::App,
            req: ::lambda_http::Request,
        ) -> ::std::pin::Pin<Box<dyn ::std::future::Future<Output = ::lambda_http::Response<::lambda_http::Body>> + Send>>
        {
            Box::pin(async move { $crate::http::respond($f(&app, req).await) })
        }
        handle as $crate::routes::Handler
    }};
}

pub struct Route {
    pub function: &'static str,
    pub method: Method,
    /// Under `/api/v1`, with `{name}` path parameters.
    pub path: &'static str,
    pub handler: Handler,
}

pub const PREFIX: &str = "/api/v1";

pub fn all() -> Vec<Route> {
    let route = |function, method, path, handler| Route {
        function,
        method,
        path,
        handler,
    };
    vec![
        route(
            "configurations-create",
            Method::POST,
            "/session-configurations",
            crate::handler!(configurations::create),
        ),
        route(
            "configurations-list",
            Method::GET,
            "/session-configurations",
            crate::handler!(configurations::list),
        ),
        route(
            "configurations-get",
            Method::GET,
            "/session-configurations/{slug}",
            crate::handler!(configurations::get),
        ),
        route(
            "configurations-update",
            Method::PATCH,
            "/session-configurations/{slug}",
            crate::handler!(configurations::update),
        ),
        route(
            "configurations-delete",
            Method::DELETE,
            "/session-configurations/{slug}",
            crate::handler!(configurations::delete),
        ),
        route(
            "workflows-list",
            Method::GET,
            "/workflows",
            crate::handler!(workflows::list),
        ),
        route(
            "workflows-get",
            Method::GET,
            "/workflows/{slug}",
            crate::handler!(workflows::get),
        ),
        route(
            "workflows-create",
            Method::POST,
            "/workflows",
            crate::handler!(workflows::create),
        ),
        route(
            "workflows-update",
            Method::PUT,
            "/workflows/{slug}",
            crate::handler!(workflows::update),
        ),
        route(
            "workflows-delete",
            Method::DELETE,
            "/workflows/{slug}",
            crate::handler!(workflows::delete),
        ),
        route(
            "sessions-create",
            Method::POST,
            "/sessions",
            crate::handler!(sessions::create),
        ),
        route(
            "sessions-list",
            Method::GET,
            "/sessions",
            crate::handler!(sessions::list),
        ),
        route(
            "sessions-get",
            Method::GET,
            "/sessions/{id}",
            crate::handler!(sessions::get),
        ),
        route(
            "sessions-resolve",
            Method::POST,
            "/sessions/{id}/resolve",
            crate::handler!(sessions::resolve),
        ),
        route(
            "sessions-resubmit",
            Method::POST,
            "/sessions/{id}/workflows/{sessionWorkflowId}/resubmit",
            crate::handler!(sessions::resubmit),
        ),
        route(
            "sessions-review",
            Method::POST,
            "/sessions/{id}/workflows/{sessionWorkflowId}/review",
            crate::handler!(sessions::review),
        ),
        route(
            "sessions-events",
            Method::GET,
            "/sessions/{id}/events",
            crate::handler!(sessions::events),
        ),
        route(
            "webhook-endpoints-create",
            Method::POST,
            "/webhook-endpoints",
            crate::handler!(webhooks::create),
        ),
        route(
            "webhook-endpoints-list",
            Method::GET,
            "/webhook-endpoints",
            crate::handler!(webhooks::list),
        ),
        route(
            "webhook-endpoints-get",
            Method::GET,
            "/webhook-endpoints/{id}",
            crate::handler!(webhooks::get),
        ),
        route(
            "webhook-endpoints-update",
            Method::PATCH,
            "/webhook-endpoints/{id}",
            crate::handler!(webhooks::update),
        ),
        route(
            "webhook-endpoints-delete",
            Method::DELETE,
            "/webhook-endpoints/{id}",
            crate::handler!(webhooks::delete),
        ),
        route(
            "webhook-endpoints-test",
            Method::POST,
            "/webhook-endpoints/{id}/test",
            crate::handler!(deliveries::test),
        ),
        route(
            "webhook-deliveries-list",
            Method::GET,
            "/webhook-endpoints/{id}/deliveries",
            crate::handler!(deliveries::list),
        ),
        route(
            "webhook-deliveries-redeliver",
            Method::POST,
            "/webhook-deliveries/{id}/redeliver",
            crate::handler!(deliveries::redeliver),
        ),
        route(
            "access-get",
            Method::GET,
            "/access/{accessToken}",
            crate::handler!(access::get),
        ),
        route(
            "access-start",
            Method::POST,
            "/access/{accessToken}/start",
            crate::handler!(access::start),
        ),
        route(
            "access-submit",
            Method::POST,
            "/access/{accessToken}/workflows/{sessionWorkflowId}",
            crate::handler!(access::submit),
        ),
    ]
}

/// Dispatches a request by method and path, as API Gateway does in front of
/// the per-endpoint functions.
/// The functions a path serves, by method.
type Methods = Vec<(Method, &'static str, Handler)>;

pub struct Router {
    paths: matchit::Router<Methods>,
}

impl Router {
    pub fn new() -> Self {
        let mut paths = matchit::Router::new();
        let mut by_path: Vec<(String, Methods)> = Vec::new();
        for route in all() {
            let path = format!("{PREFIX}{}", route.path);
            let entry = (route.method, route.function, route.handler);
            match by_path.iter_mut().find(|(p, _)| *p == path) {
                Some((_, methods)) => methods.push(entry),
                None => by_path.push((path, vec![entry])),
            }
        }
        for (path, methods) in by_path {
            // The table above is static and conflict-free; a test checks it.
            if let Err(e) = paths.insert(path.clone(), methods) {
                tracing::error!(%path, error = %e, "route conflict");
            }
        }
        Self { paths }
    }

    /// Routes the request as API Gateway does and runs its handler inside
    /// the request's span (`requestId`, and `function` once routed), so
    /// every line it logs names both. The id is the client's `X-Request-Id`
    /// when it looks like one, else API Gateway's, else a new one; the
    /// response carries it back.
    pub async fn dispatch(&self, app: App, req: Request) -> Response<Body> {
        let request_id = request_id_of(&req);
        let span = crate::telemetry::request_span(&request_id);
        let mut response = self.route(app, req, &request_id, &span).instrument(span.clone()).await;
        set_request_id(&mut response, &request_id);
        response
    }

    async fn route(&self, app: App, req: Request, request_id: &str, span: &tracing::Span) -> Response<Body> {
        use lambda_http::RequestExt;
        let path = req.uri().path().to_owned();
        let Ok(matched) = self.paths.at(&path) else {
            return crate::http::problem_response(&crate::http::ApiError::NoRoute);
        };
        let Some((_, function, handler)) = matched.value.iter().find(|(m, _, _)| *m == req.method()) else {
            let mut response = respond(Err(crate::http::ApiError::MethodNotAllowed(req.method().to_string())));
            let allowed: Vec<&str> = matched.value.iter().map(|(m, _, _)| m.as_str()).collect();
            if let Ok(allow) = http::HeaderValue::from_str(&allowed.join(", ")) {
                response.headers_mut().insert(http::header::ALLOW, allow);
            }
            return response;
        };
        let params: std::collections::HashMap<String, String> = matched
            .params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let (function, handler) = (*function, *handler);
        span.record("function", function);
        handle(function, handler, app, req.with_path_parameters(params), request_id).await
    }
}

/// Runs one API request's handler (locally after routing, on Lambda as
/// the function's whole work) and logs it by function name: raw paths can
/// carry access tokens, which never reach the logs. The response carries
/// `request_id` as `X-Request-Id`.
pub async fn handle(
    function: &'static str,
    handler: Handler,
    app: App,
    req: Request,
    request_id: &str,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let api_request_id = api_gateway_request_id(&req);
    let mut response = handler(app, req).await;
    let ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        function,
        status = response.status().as_u16(),
        ms,
        apiRequestId = api_request_id.as_deref(),
        "request"
    );
    set_request_id(&mut response, request_id);
    response
}

/// The header a request's id is read from (locally) and answered in.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn request_id_of(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_request_id(v))
        .map(str::to_owned)
        .or_else(|| api_gateway_request_id(req))
        .unwrap_or_else(crate::telemetry::new_request_id)
}

/// A client's id is logged only if it is short and made of characters that
/// cannot spell much besides an id (no spaces, `@` or quotes).
fn is_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// API Gateway's id of the request, when it came through API Gateway.
fn api_gateway_request_id(req: &Request) -> Option<String> {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
}

fn set_request_id(response: &mut Response<Body>, request_id: &str) {
    if let Ok(value) = http::HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_unique_and_insertable() {
        let routes = all();
        let mut names: Vec<_> = routes.iter().map(|r| r.function).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), routes.len());
        let mut router = matchit::Router::new();
        let mut seen = std::collections::HashSet::new();
        for r in &routes {
            assert!(seen.insert((r.method.clone(), r.path)), "{} {}", r.method, r.path);
            if router.at(r.path).is_err() {
                router.insert(r.path, ()).unwrap();
            }
        }
    }

    #[test]
    fn cargo_lambda_watch_routes_match_the_table() {
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
        let section = manifest
            .split("[workspace.metadata.lambda.watch.router]")
            .nth(1)
            .unwrap();
        let section = section.split("\n[").next().unwrap();
        let routes = all();
        for route in &routes {
            let line = section
                .lines()
                .find(|l| l.starts_with(&format!("\"{PREFIX}{}\" =", route.path)))
                .unwrap_or_else(|| panic!("no watch route for {}", route.path));
            let entry = format!("{{ method = \"{}\", function = \"{}\" }}", route.method, route.function);
            assert!(line.contains(&entry), "{line} lacks {entry}");
        }
        assert_eq!(section.matches("function = ").count(), routes.len());
    }

    #[test]
    fn the_sam_template_declares_every_route() {
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap();
        for route in all() {
            let resource = format!("        Binary: {}\n", route.function);
            let at = template
                .find(&resource)
                .unwrap_or_else(|| panic!("no function {}", route.function));
            let rest = &template[at..];
            let end = rest.find("\n\n").unwrap_or(rest.len());
            let block = &rest[..end];
            assert!(
                block.contains(&format!("Method: {}\n", route.method)),
                "{}",
                route.function
            );
            assert!(
                block.contains(&format!("Path: {PREFIX}{}", route.path)),
                "{}",
                route.function
            );
        }
        assert_eq!(template.matches("Type: HttpApi\n").count(), all().len());
    }

    #[test]
    fn every_function_has_a_binary() {
        for route in all() {
            let path = format!("{}/src/bin/{}.rs", env!("CARGO_MANIFEST_DIR"), route.function);
            let source = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {path}"));
            let call = format!("serve_route(\"{}\")", route.function);
            assert!(source.contains(&call), "{path} should serve {}", route.function);
        }
    }
}
