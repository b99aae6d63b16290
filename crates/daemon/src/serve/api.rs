//! The routes: health, metrics and `/api/v1`, with their access rules, and the OpenAPI
//! document generated from the same table ([`ENDPOINTS`]) and the response types' schemas.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use floodwall_mitigate::{FlowFilter, Held, RuleKind};
use ipnet::IpNet;
use schemars::generate::{Contract, SchemaSettings};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::{Access, Scope, Tokens};
use super::metrics;
use super::HttpContext;
use crate::act::control::{Reply, Request as Call};
use crate::clock::unix_ms;
use crate::history::query::{
    AttackDetail, AttackQuery, AttackSummary, ExporterSeries, History, InfectedQuery, QueryError,
    RangeQuery, SeriesQuery, TargetSeries, TopKind, TopQuery, TopRow, TrafficQuery, TrafficSeries,
};
use crate::status::{ExporterStatus, ListenerStatus, Status};

/// How long the actions thread has to answer a rule request.
const ACTIONS_TIMEOUT: Duration = Duration::from_secs(10);
/// A status older than this means the engine thread stopped publishing.
const STALE_STATUS_MS: u64 = 5_000;
/// Request bodies are a few hundred bytes.
const MAX_BODY: usize = 64 << 10;

pub struct App {
    context: HttpContext,
    tokens: Tokens,
    started_ms: u64,
    /// Turns true when the daemon stops: live streams end so the listener can close.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl App {
    pub fn new(
        context: HttpContext,
        tokens: Tokens,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<App> {
        Arc::new(App {
            context,
            tokens,
            started_ms: unix_ms(),
            stopping,
        })
    }

    /// The latest snapshot, with the actions' part as they last published it (the engine
    /// takes it in only at its next second).
    /// The hunt's snapshot with the C2 routes' counts.
    fn hunt(&self) -> crate::hunt::HuntSnapshot {
        let mut hunt = self.context.hunt.snapshot();
        if let Some(c2) = &self.context.c2_routes {
            hunt.c2_routes = c2.counts.routes.load(std::sync::atomic::Ordering::Relaxed);
            hunt.c2_routes_refused = c2.counts.refused.load(std::sync::atomic::Ordering::Relaxed);
        }
        hunt
    }

    fn status(&self) -> Arc<Status> {
        let status = self.context.board.latest();
        let mitigation = self.context.board.mitigation();
        if status.mitigation == *mitigation {
            return status;
        }
        let mut fresher = (*status).clone();
        fresher.mitigation = (*mitigation).clone();
        Arc::new(fresher)
    }
}

/// An error as every route answers it: the status and `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

/// The body of every error.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"floodwall\""),
            );
        }
        response
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// One documented route.
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// `None`: open to anyone who reaches the listener.
    pub scope: Option<Scope>,
    pub parameters: &'static [Parameter],
    pub request: Option<SchemaOf>,
    /// `None`: not JSON (the metrics' text).
    pub response: Option<SchemaOf>,
}

pub struct Parameter {
    pub name: &'static str,
    /// `path` or `query`.
    pub location: &'static str,
    pub description: &'static str,
    pub schema: fn() -> Value,
}

type SchemaOf = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

fn schema<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

fn string() -> Value {
    json!({"type": "string"})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn integer() -> Value {
    json!({"type": "integer", "minimum": 1})
}

const SINCE: Parameter = Parameter {
    name: "since",
    location: "query",
    description: "RFC 3339 or Unix ms; default 15 minutes before `until`.",
    schema: string,
};

const UNTIL: Parameter = Parameter {
    name: "until",
    location: "query",
    description: "RFC 3339 or Unix ms; default now.",
    schema: string,
};

const DIRECTION: Parameter = Parameter {
    name: "direction",
    location: "query",
    description: "`incoming` (default) or `outgoing`.",
    schema: string,
};

/// Every route but the fallbacks.
/// The infected-host queries' filters (the list and the report).
const INFECTED_SINCE: Parameter = Parameter {
    name: "since",
    location: "query",
    description: "Seen since (RFC 3339 or Unix ms); default: the last 24 hours.",
    schema: string,
};
const INFECTED_HOSTGROUP: Parameter = Parameter {
    name: "hostgroup",
    location: "query",
    description: "Only this hostgroup.",
    schema: string,
};

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "get",
        path: "/healthz",
        summary: "Liveness: 200 while the engine publishes its status (every second), 503 once it has not for 5 s.",
        scope: None,
        parameters: &[],
        request: None,
        response: Some(schema::<Health>),
    },
    Endpoint {
        method: "get",
        path: "/readyz",
        summary: "Readiness: 200 once the pipeline runs and has published its first status, 503 before.",
        scope: None,
        parameters: &[],
        request: None,
        response: Some(schema::<Health>),
    },
    Endpoint {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics (text format 0.0.4).",
        scope: Some(Scope::Read),
        parameters: &[],
        request: None,
        response: None,
    },
    Endpoint {
        method: "get",
        path: "/api/v1/status",
        summary: "The daemon's status: collectors, engine, active attacks, mitigators, bus (refreshed every second).",
        scope: Some(Scope::Read),
        parameters: &[],
        request: None,
        response: Some(schema::<Status>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/exporters",
        summary: "Collector listeners and the exporters heard, with their counters.",
        scope: Some(Scope::Read),
        parameters: &[],
        request: None,
        response: Some(schema::<Exporters>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/exporters/{address}/series",
        summary: "One exporter's counters over time, every 10 s (404 when [history] is off).",
        scope: Some(Scope::Read),
        parameters: &[
            Parameter {
                name: "address",
                location: "path",
                description: "The exporter's address.",
                schema: string,
            },
            SINCE,
            UNTIL,
        ],
        request: None,
        response: Some(schema::<ExporterSeries>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/attacks",
        summary: "Attacks, newest first: from the history (ended ones included), or the active ones when [history] is off.",
        scope: Some(Scope::Read),
        parameters: &[
            Parameter {
                name: "active",
                location: "query",
                description: "`true`: going on now; `false`: ended.",
                schema: boolean,
            },
            Parameter {
                name: "direction",
                location: "query",
                description: "`incoming` or `outgoing`.",
                schema: string,
            },
            Parameter {
                name: "vector",
                location: "query",
                description: "Only attacks with this vector (`syn_flood`, …).",
                schema: string,
            },
            Parameter {
                name: "hostgroup",
                location: "query",
                description: "Only attacks on this hostgroup.",
                schema: string,
            },
            Parameter {
                name: "target",
                location: "query",
                description: "Only attacks whose target lies inside this address or prefix.",
                schema: string,
            },
            Parameter {
                name: "since",
                location: "query",
                description: "Attacks going on at or after this time (RFC 3339 or Unix ms).",
                schema: string,
            },
            Parameter {
                name: "until",
                location: "query",
                description: "Attacks started before this time (RFC 3339 or Unix ms).",
                schema: string,
            },
            Parameter {
                name: "limit",
                location: "query",
                description: "At most this many (default 100, at most 10000).",
                schema: integer,
            },
        ],
        request: None,
        response: Some(schema::<Vec<AttackSummary>>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/attacks/{id}",
        summary: "One attack from the history: its latest event (trigger, evidence, fingerprint, rules), its timeline and its mitigations (404 when unknown or [history] is off).",
        scope: Some(Scope::Read),
        parameters: &[Parameter {
            name: "id",
            location: "path",
            description: "The attack's id.",
            schema: string,
        }],
        request: None,
        response: Some(schema::<AttackDetail>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/traffic",
        summary: "A hostgroup's traffic over time, per second within [history] per_second_s and an hour, else per minute (404 when [history] is off).",
        scope: Some(Scope::Read),
        parameters: &[
            Parameter {
                name: "hostgroup",
                location: "query",
                description: "Default `default`.",
                schema: string,
            },
            DIRECTION,
            SINCE,
            UNTIL,
        ],
        request: None,
        response: Some(schema::<TrafficSeries>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/top",
        summary: "The busiest hosts or prefixes: of the last second, or over a range of the history (means; a second out of the top 10 counts as nothing).",
        scope: Some(Scope::Read),
        parameters: &[
            Parameter {
                name: "kind",
                location: "query",
                description: "`host` (default) or `prefix`.",
                schema: string,
            },
            DIRECTION,
            Parameter {
                name: "since",
                location: "query",
                description: "RFC 3339 or Unix ms; absent: the last second.",
                schema: string,
            },
            UNTIL,
        ],
        request: None,
        response: Some(schema::<Vec<TopRow>>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/targets/{target}/series",
        summary: "A host's or prefix's traffic over time, for the seconds (minutes) it was among the busiest (404 when [history] is off).",
        scope: Some(Scope::Read),
        parameters: &[
            Parameter {
                name: "target",
                location: "path",
                description: "An address or prefix (its `/` raw or as `%2F`).",
                schema: string,
            },
            DIRECTION,
            SINCE,
            UNTIL,
        ],
        request: None,
        response: Some(schema::<TargetSeries>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/mitigations",
        summary: "Every rule held: announced, queued, awaiting evidence or recorded in dry run.",
        scope: Some(Scope::Read),
        parameters: &[],
        request: None,
        response: Some(schema::<Vec<Held>>),
    },
    Endpoint {
        method: "post",
        path: "/api/v1/mitigations",
        summary: "Announce a rule by hand, through the same guard rails as `floodwall mitigations announce` (422 with the reason when one refuses).",
        scope: Some(Scope::Write),
        parameters: &[],
        request: Some(schema::<Announce>),
        response: Some(schema::<Reply>),
    },
    Endpoint {
        method: "delete",
        path: "/api/v1/mitigations/{id}",
        summary: "Withdraw a rule (404 when none has this id).",
        scope: Some(Scope::Write),
        parameters: &[Parameter {
            name: "id",
            location: "path",
            description: "The rule's id, as listed (its `/` raw or as `%2F`).",
            schema: string,
        }],
        request: None,
        response: Some(schema::<Reply>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/hostgroups",
        summary: "Hostgroups with the limits in force (group, then top level, then built-in).",
        scope: Some(Scope::Read),
        parameters: &[],
        request: None,
        response: Some(schema::<Vec<floodwall_detect::EffectiveLimits>>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/config",
        summary: "The running configuration, secrets redacted (webhook paths and queries).",
        scope: Some(Scope::Read),
        parameters: &[],
        request: None,
        response: Some(schema::<crate::config::Config>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/stream",
        summary: "Server-Sent Events: `event: status` with the status (as /api/v1/status) once a second, for the dashboard and anything live.",
        scope: Some(Scope::Read),
        parameters: &[],
        request: None,
        response: None,
    },
    Endpoint {
        method: "get",
        path: "/api/v1/infected",
        summary: "Hosts of the monitored networks listed as infected (outgoing attacks, scanning, C2 contacts, beaconing), with their evidence, most recently seen first: from the history, else those listed since the daemon started.",
        scope: Some(Scope::Read),
        parameters: &[
            INFECTED_SINCE,
            INFECTED_HOSTGROUP,
            Parameter {
                name: "limit",
                location: "query",
                description: "At most this many hosts (default 1,000).",
                schema: integer,
            },
        ],
        request: None,
        response: Some(schema::<Vec<floodwall_hunt::InfectedHost>>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/infected/report",
        summary: "The abuse report: one row per infected host and reason (Shadowserver-like fields), as `floodwall report infected` writes it; `format=csv` for CSV.",
        scope: Some(Scope::Read),
        parameters: &[
            INFECTED_SINCE,
            INFECTED_HOSTGROUP,
            Parameter {
                name: "format",
                location: "query",
                description: "`json` (default) or `csv`.",
                schema: string,
            },
        ],
        request: None,
        response: Some(schema::<Vec<floodwall_hunt::report::ReportRow>>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/campaigns",
        summary: "Campaigns: attacks whose sources overlap (one bot pool), with their estimated combined size, targets and vectors, most recently seen first.",
        scope: Some(Scope::Read),
        parameters: &[],
        request: None,
        response: Some(schema::<Vec<floodwall_hunt::campaign::CampaignSummary>>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/hunt",
        summary: "The hunt's counters and C2 feeds: records read, probes, C2 contacts, hosts followed and listed.",
        scope: Some(Scope::Read),
        parameters: &[],
        request: None,
        response: Some(schema::<HuntCounters>),
    },
    Endpoint {
        method: "get",
        path: "/api/v1/openapi.json",
        summary: "This document.",
        scope: Some(Scope::Read),
        parameters: &[Parameter {
            name: "pretty",
            location: "query",
            description: "Indented JSON.",
            schema: boolean,
        }],
        request: None,
        response: None,
    },
];

/// `GET /api/v1/hunt`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HuntCounters {
    #[schemars(with = "Value")]
    pub stats: floodwall_hunt::hosts::HuntStats,
    pub records_skipped: u64,
    pub c2_entries: usize,
    pub c2_domains: usize,
    /// C2 null routes of the current list that passed the guard rails, and those refused.
    pub c2_routes: u64,
    pub c2_routes_refused: u64,
    pub campaigns: usize,
}

/// `GET /api/v1/infected/report`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    since: Option<String>,
    hostgroup: Option<String>,
    format: Option<String>,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok`, `starting` or `stalled`.
    pub status: String,
    /// Milliseconds since the last status snapshot (absent before the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_age_ms: Option<u64>,
}

/// `/api/v1/exporters`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Exporters {
    pub listeners: Vec<ListenerStatus>,
    pub exporters: Vec<ExporterStatus>,
}

/// `POST /api/v1/mitigations`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Announce {
    /// The address or prefix to protect (inside the monitored networks).
    #[schemars(with = "String")]
    pub target: IpNet,
    /// `blackhole` or `flowspec`.
    pub kind: RuleKind,
    /// Narrows a flowspec rule (its destination must be the target).
    #[serde(default)]
    pub filter: Option<FlowFilter>,
    /// Hold this long, then withdraw; absent: until withdrawn.
    #[serde(default)]
    pub seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pretty {
    #[serde(default)]
    pretty: bool,
}

pub fn router(app: Arc<App>) -> Router {
    let read = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/api/v1/status", get(status))
        .route("/api/v1/exporters", get(exporters))
        .route("/api/v1/exporters/{address}/series", get(exporter_series))
        .route("/api/v1/attacks", get(attacks))
        .route("/api/v1/attacks/{*id}", get(attack))
        .route("/api/v1/traffic", get(traffic))
        .route("/api/v1/top", get(top))
        // `/api/v1/targets/203.0.113.0/24/series`: the target holds a slash.
        .route("/api/v1/targets/{*rest}", get(target_series))
        .route("/api/v1/mitigations", get(mitigations))
        .route("/api/v1/hostgroups", get(hostgroups))
        .route("/api/v1/config", get(config))
        .route("/api/v1/infected", get(infected))
        .route("/api/v1/infected/report", get(infected_report))
        .route("/api/v1/campaigns", get(campaigns))
        .route("/api/v1/hunt", get(hunt))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/stream", get(stream))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_read));
    let write = Router::new()
        .route("/api/v1/mitigations", axum::routing::post(announce))
        // Ids hold the target prefix (`manual-203.0.113.9/32-blackhole`): the slash may come
        // raw or percent-encoded.
        .route("/api/v1/mitigations/{*id}", delete(withdraw))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_write));
    Router::new()
        .route("/", get(dashboard))
        .route("/ui/{*file}", get(asset))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(read)
        .merge(write)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(app.clone(), require_host))
        .with_state(app)
}

/// Without tokens, only requests addressed to an IP literal or `localhost`: a page of another
/// site that rebinds its own name to 127.0.0.1 (DNS rebinding) reaches the listener from the
/// operator's browser, but with its own name in `Host`. With tokens, the token guards.
async fn require_host(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if app.tokens.configured() {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    match host {
        Some(host) if !host_is_literal(host) => ApiError::new(
            StatusCode::FORBIDDEN,
            "without [http] tokens_file this listener answers requests to an IP address or localhost only",
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// `127.0.0.1:9188`, `[::1]:9188`, `localhost`, …: an address, not a name someone else owns.
fn host_is_literal(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or("", |(name, _)| name),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

async fn require_read(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    guard(&app, Scope::Read, request, next).await
}

async fn require_write(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    guard(&app, Scope::Write, request, next).await
}

async fn guard(app: &App, scope: Scope, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match app.tokens.check(authorization, scope) {
        Access::Granted(_) => next.run(request).await,
        Access::Unauthenticated => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a valid token is needed: `Authorization: Bearer TOKEN` (see [http] tokens_file)",
        )
        .into_response(),
        Access::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, why).into_response(),
    }
}

/// The dashboard's files, in the binary: the page itself needs no token (it holds no data; its
/// calls to the API do).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("ui/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("ui/app.css"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("ui/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("ui/vendor/uPlot.min.css"),
    ),
    (
        "vendor/LICENSE-uPlot",
        "text/plain; charset=utf-8",
        include_bytes!("ui/vendor/LICENSE-uPlot"),
    ),
];

/// Only this origin's scripts and styles, never framed.
const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        include_str!("ui/index.html"),
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// The status once a second as Server-Sent Events, until the client goes or the daemon stops.
async fn stream(State(app): State<Arc<App>>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let events = futures_util::stream::unfold((app, true), |(app, first)| async move {
        let mut stopping = app.stopping.clone();
        if !first {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopping.wait_for(|stop| *stop) => return None,
            }
        }
        if *stopping.borrow() {
            return None;
        }
        let event = Event::default()
            .event("status")
            .json_data(&*app.status())
            .unwrap_or_else(|_| Event::default().comment("unserializable status"));
        Some((Ok::<_, std::convert::Infallible>(event), (app, false)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint: /api/v1/openapi.json lists them",
    )
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here: /api/v1/openapi.json lists the methods"),
    )
}

fn health(app: &App, ready: bool) -> (StatusCode, Json<Health>) {
    let status = app.status();
    if status.at_ms == 0 {
        // Nothing published yet: starting (alive) but not ready.
        let code = if ready || unix_ms().saturating_sub(app.started_ms) > STALE_STATUS_MS {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        return (
            code,
            Json(Health {
                status: "starting".into(),
                status_age_ms: None,
            }),
        );
    }
    let age = unix_ms().saturating_sub(status.at_ms);
    let (code, word) = if age > STALE_STATUS_MS {
        (StatusCode::SERVICE_UNAVAILABLE, "stalled")
    } else {
        (StatusCode::OK, "ok")
    };
    (
        code,
        Json(Health {
            status: word.into(),
            status_age_ms: Some(age),
        }),
    )
}

async fn healthz(State(app): State<Arc<App>>) -> impl IntoResponse {
    health(&app, false)
}

async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    health(&app, true)
}

async fn metrics_text(State(app): State<Arc<App>>) -> impl IntoResponse {
    let store = app
        .context
        .history
        .as_ref()
        .map(|(_, counts)| counts.as_ref());
    let hunt = app.hunt();
    let text = metrics::render(&app.status(), &app.context.counters, store, Some(&hunt));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn status(State(app): State<Arc<App>>) -> Json<Arc<Status>> {
    Json(app.status())
}

async fn exporters(State(app): State<Arc<App>>) -> Json<Exporters> {
    let status = app.status();
    Json(Exporters {
        listeners: status.collector.listeners.clone(),
        exporters: status.collector.exporters.clone(),
    })
}

fn query<T: serde::de::DeserializeOwned + Default>(
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
            QueryError::Store(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }
}

/// Infected hosts: the history's, else the hunt's current list (filtered alike).
async fn infected_hosts(
    app: &Arc<App>,
    filter: InfectedQuery,
) -> Result<Vec<floodwall_hunt::InfectedHost>, ApiError> {
    if app.context.history.is_some() {
        return read_history(app, move |h| h.infected(&filter, unix_ms())).await;
    }
    let since = match filter.since.as_deref() {
        Some(text) => crate::history::query::parse_time(text).map_err(ApiError::from)?,
        None => unix_ms().saturating_sub(86_400_000),
    };
    let mut list = app.context.hunt.snapshot().infected;
    list.retain(|h| {
        h.last_seen >= since && filter.hostgroup.as_ref().is_none_or(|g| &h.hostgroup == g)
    });
    list.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.host.cmp(&b.host)));
    list.truncate(filter.limit.unwrap_or(1_000).min(100_000));
    Ok(list)
}

async fn infected(
    State(app): State<Arc<App>>,
    filter: Result<Query<InfectedQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<floodwall_hunt::InfectedHost>> {
    let filter = query(filter)?;
    Ok(Json(infected_hosts(&app, filter).await?))
}

async fn infected_report(
    State(app): State<Arc<App>>,
    filter: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let filter = query(filter)?;
    let csv = match filter.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("format `{other}`: give json or csv"),
            ))
        }
    };
    let hosts = infected_hosts(
        &app,
        InfectedQuery {
            since: filter.since,
            hostgroup: filter.hostgroup,
            limit: Some(100_000),
        },
    )
    .await?;
    let rows = floodwall_hunt::report::rows(&hosts);
    if !csv {
        return Ok(Json(rows).into_response());
    }
    let mut body = Vec::new();
    floodwall_hunt::report::write_csv(&mut body, &rows)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response())
}

async fn campaigns(
    State(app): State<Arc<App>>,
) -> ApiResult<Vec<floodwall_hunt::campaign::CampaignSummary>> {
    Ok(Json(app.context.hunt.snapshot().campaigns))
}

async fn hunt(State(app): State<Arc<App>>) -> ApiResult<HuntCounters> {
    let s = app.hunt();
    Ok(Json(HuntCounters {
        stats: s.stats,
        records_skipped: s.records_skipped,
        c2_entries: s.c2_entries,
        c2_domains: s.c2_domains,
        c2_routes: s.c2_routes,
        c2_routes_refused: s.c2_routes_refused,
        campaigns: s.campaigns.len(),
    }))
}

/// Runs a history query off the runtime's thread.
async fn read_history<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&History) -> Result<T, QueryError> + Send + 'static,
) -> Result<T, ApiError> {
    let Some((history, _)) = app.context.history.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no history here: [history] enabled = false",
        ));
    };
    tokio::task::spawn_blocking(move || f(&history))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the query was lost"))?
        .map_err(ApiError::from)
}

async fn attacks(
    State(app): State<Arc<App>>,
    filter: Result<Query<AttackQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<AttackSummary>> {
    let filter = query(filter)?;
    if app.context.history.is_some() {
        return Ok(Json(read_history(&app, move |h| h.attacks(&filter)).await?));
    }
    // No history: the attacks going on, filtered alike.
    if filter.since.is_some() || filter.until.is_some() || filter.active == Some(false) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no history here ([history] enabled = false): only the active attacks are known",
        ));
    }
    let status = app.status();
    let mut list: Vec<AttackSummary> = status
        .attacks
        .iter()
        .rev()
        .filter(|a| filter.direction.is_none_or(|d| a.direction == d))
        .filter(|a| filter.vector.is_none_or(|v| a.vectors.contains(&v)))
        .filter(|a| filter.hostgroup.as_ref().is_none_or(|g| &a.hostgroup == g))
        .filter(|a| filter.target.is_none_or(|t| t.contains(&a.target)))
        .map(AttackSummary::from)
        .collect();
    list.truncate(filter.limit.unwrap_or(100));
    Ok(Json(list))
}

async fn attack(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<AttackDetail> {
    let wanted = id.clone();
    match read_history(&app, move |h| h.attack(&wanted)).await? {
        Some(detail) => Ok(Json(detail)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no attack {id} in the history"),
        )),
    }
}

async fn traffic(
    State(app): State<Arc<App>>,
    q: Result<Query<TrafficQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<TrafficSeries> {
    let q = query(q)?;
    Ok(Json(
        read_history(&app, move |h| h.traffic(&q, unix_ms())).await?,
    ))
}

async fn top(
    State(app): State<Arc<App>>,
    q: Result<Query<TopQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<TopRow>> {
    let q = query(q)?;
    if q.since.is_none() && q.until.is_none() {
        let status = app.status();
        let prefixes = q.kind == Some(TopKind::Prefix);
        let direction = q.direction.unwrap_or(floodwall_detect::Direction::Incoming);
        let rows = status
            .top
            .list(prefixes, direction)
            .iter()
            .map(|e| TopRow {
                target: e.target.to_string(),
                hostgroup: e.hostgroup.clone(),
                pps: e.pps,
                bps: e.bps,
                peak_pps: e.pps,
            })
            .collect();
        return Ok(Json(rows));
    }
    Ok(Json(
        read_history(&app, move |h| h.top(&q, unix_ms())).await?,
    ))
}

async fn target_series(
    State(app): State<Arc<App>>,
    Path(rest): Path<String>,
    q: Result<Query<SeriesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<TargetSeries> {
    let q = query(q)?;
    let Some(target) = rest.strip_suffix("/series").map(str::to_string) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such endpoint: /api/v1/targets/{target}/series",
        ));
    };
    Ok(Json(
        read_history(&app, move |h| h.target_series(&target, &q, unix_ms())).await?,
    ))
}

async fn exporter_series(
    State(app): State<Arc<App>>,
    Path(address): Path<String>,
    q: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ExporterSeries> {
    let q = query(q)?;
    Ok(Json(
        read_history(&app, move |h| h.exporter_series(&address, &q, unix_ms())).await?,
    ))
}

/// Asks the actions thread, as the control socket does, without blocking the runtime.
async fn ask(app: &App, request: Call) -> Result<Reply, ApiError> {
    let calls = app.context.calls.clone();
    tokio::task::spawn_blocking(move || {
        let (tx, rx) = crossbeam_channel::bounded(1);
        calls.send((request, tx)).map_err(|_| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping")
        })?;
        rx.recv_timeout(ACTIONS_TIMEOUT).map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon's actions did not answer in time",
            )
        })
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the request was lost"))?
}

async fn mitigations(State(app): State<Arc<App>>) -> ApiResult<Vec<Held>> {
    let reply = ask(&app, Call::List).await?;
    match (reply.ok, reply.mitigations) {
        (true, Some(held)) => Ok(Json(held)),
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            reply.error.unwrap_or_else(|| "no list".into()),
        )),
    }
}

async fn announce(
    State(app): State<Arc<App>>,
    body: Result<Json<Announce>, JsonRejection>,
) -> Result<(StatusCode, Json<Reply>), ApiError> {
    // 400 for JSON that does not parse, 422 for a body that is not an announcement, 415
    // without `Content-Type: application/json`.
    let Json(announce) =
        body.map_err(|e: JsonRejection| ApiError::new(e.status(), e.body_text()))?;
    let reply = ask(
        &app,
        Call::Announce {
            target: announce.target,
            kind: announce.kind,
            filter: announce.filter,
            seconds: announce.seconds,
        },
    )
    .await?;
    if reply.ok {
        Ok((StatusCode::OK, Json(reply)))
    } else {
        // A guard rail (never, scope, max_active, …) or an invalid rule: nothing changed.
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            reply.error.unwrap_or_default(),
        ))
    }
}

async fn withdraw(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Reply> {
    let reply = ask(&app, Call::Withdraw { id }).await?;
    if reply.ok {
        Ok(Json(reply))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            reply.error.unwrap_or_default(),
        ))
    }
}

async fn hostgroups(State(app): State<Arc<App>>) -> Json<Vec<floodwall_detect::EffectiveLimits>> {
    Json(app.context.limits.clone())
}

async fn config(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.context.config.clone())
}

async fn openapi(
    pretty: Result<Query<Pretty>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let pretty = query(pretty)?.pretty;
    let document = openapi_document();
    let text = if pretty {
        serde_json::to_string_pretty(&document)
    } else {
        serde_json::to_string(&document)
    }
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// The OpenAPI 3.0 document of [`ENDPOINTS`], schemas generated from the response types.
pub fn openapi_document() -> Value {
    let mut settings = SchemaSettings::openapi3();
    settings.contract = Contract::Serialize;
    let mut generator = settings.into_generator();
    let error = generator.subschema_for::<ErrorBody>();
    let mut paths = serde_json::Map::new();
    for e in ENDPOINTS {
        let mut responses = serde_json::Map::new();
        let mut ok = match (e.response, e.path) {
            (Some(of), _) => json!({
                "description": "OK",
                "content": {"application/json": {"schema": of(&mut generator)}}
            }),
            (None, "/metrics") => json!({
                "description": "OK",
                "content": {"text/plain": {"schema": {"type": "string"}}}
            }),
            (None, "/api/v1/stream") => json!({
                "description": "OK: a stream of `event: status` whose `data` is the status object",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}
            }),
            (None, _) => json!({
                "description": "OK",
                "content": {"application/json": {"schema": {"type": "object"}}}
            }),
        };
        if e.path == "/api/v1/infected/report" {
            // `format=csv`: the same rows as CSV.
            ok["content"]["text/csv"] = json!({"schema": {"type": "string"}});
        }
        responses.insert("200".into(), ok);
        let failure = |what: &str| {
            json!({
                "description": what,
                "content": {"application/json": {"schema": error.clone()}}
            })
        };
        if e.scope.is_some() {
            responses.insert("401".into(), failure("No token, or an unknown one."));
            responses.insert(
                "403".into(),
                failure("The token may not do this (a read token on a change)."),
            );
        }
        if e.method == "get" && e.parameters.iter().any(|p| p.location == "query") {
            responses.insert(
                "400".into(),
                failure("A query parameter that does not parse, or an unknown one."),
            );
        }
        if e.path.starts_with("/healthz") || e.path.starts_with("/readyz") {
            responses.insert("503".into(), failure("Not healthy or not ready."));
        }
        if e.method != "get" {
            responses.insert("400".into(), failure("A body that is not JSON."));
            responses.insert(
                "415".into(),
                failure("A body without `Content-Type: application/json`."),
            );
            responses.insert(
                "422".into(),
                failure("Refused by a guard rail, or not a valid rule."),
            );
            responses.insert("404".into(), failure("No such rule."));
            responses.insert(
                "503".into(),
                failure("The daemon is stopping or its actions did not answer."),
            );
        }
        let mut operation = json!({
            "summary": e.summary,
            "operationId": operation_id(e),
            "responses": responses,
        });
        if !e.parameters.is_empty() {
            operation["parameters"] = e
                .parameters
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "in": p.location,
                        "required": p.location == "path",
                        "description": p.description,
                        "schema": (p.schema)(),
                    })
                })
                .collect();
        }
        if let Some(of) = e.request {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": of(&mut generator)}}
            });
        }
        match e.scope {
            None => operation["security"] = json!([]),
            Some(Scope::Read) => operation["security"] = json!([{"bearer": ["read"]}]),
            Some(Scope::Write) => operation["security"] = json!([{"bearer": ["write"]}]),
        }
        let entry = paths.entry(e.path.to_string()).or_insert_with(|| json!({}));
        entry[e.method] = operation;
    }
    let mut schemas: serde_json::Map<String, Value> =
        generator.take_definitions(true).into_iter().collect();
    // ipnet describes a prefix as one of two string schemas that both accept any string, which
    // `oneOf` then refuses: it is one string, v4 or v6.
    if let Some(net) = schemas.get_mut("IpNet") {
        *net = json!({
            "type": "string",
            "description": "An IPv4 or IPv6 address with its prefix length: `203.0.113.0/24`, `2001:db8::/48`.",
            "example": "203.0.113.0/24"
        });
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Floodwall",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Floodwall daemon's HTTP API: status, attacks, mitigations, exporters, hostgroups and configuration. With `[http] tokens_file` set, every call but the health checks needs `Authorization: Bearer TOKEN`; announcing and withdrawing need a write token."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
        }
    })
}

fn operation_id(e: &Endpoint) -> String {
    let mut id = e.method.to_string();
    for part in e.path.split(['/', '.', '{', '}']) {
        if part.is_empty() || part == "api" || part == "v1" {
            continue;
        }
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_and_localhost_are_literal_hosts() {
        for host in [
            "127.0.0.1:9188",
            "127.0.0.1",
            "[::1]:9188",
            "[::1]",
            "localhost:9188",
            "LOCALHOST",
            "192.0.2.7",
        ] {
            assert!(host_is_literal(host), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:9188",
            "127.0.0.1.nip.io:9188",
            "",
            "[::1",
        ] {
            assert!(!host_is_literal(host), "{host}");
        }
    }
}
