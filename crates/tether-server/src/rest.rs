//! The REST door: the seed's endpoints, implemented for real, plus health and status.

use std::sync::Arc;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tether_rooms::{
    CloseReason, Command, ErrorCode, HubError, ListType, Name, Position, Recovery, Register, Reply,
    RoomInfo,
};

use crate::rooms_state::RoomsState;
use crate::socket::error_response;

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

/// The REST routes.
pub fn routes() -> Router<Arc<RoomsState>> {
    Router::new()
        .route("/health", get(health))
        .route("/server/status", get(status))
        .route("/clients/register", post(register))
        .route("/clients/pause", post(pause))
        .route("/clients/resume", post(resume))
        .route("/clients/close", post(close))
        .route("/chatrooms", post(create_room))
        .route("/chatrooms/join", post(join_room))
        .route("/chatrooms/list", get(list))
        .route("/chatrooms/{room}", delete(delete_room))
        .route("/chatrooms/{room}/history", get(history))
        .route("/messages/send", post(send))
        .route("/messages/client-to-client", post(direct))
        .route("/messages", get(messages))
}

/// The REST form of a hub error.
pub struct ApiError(HubError);

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        error_response(status, self.0.code.as_str(), &self.0.message)
    }
}

type ApiResult = Result<Response, ApiError>;

fn bad(code: ErrorCode, msg: impl Into<String>) -> ApiError {
    ApiError(HubError::new(code, msg))
}

/// A JSON body read with a size limit, whose errors are JSON too.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| {
                bad(
                    ErrorCode::TooLong,
                    format!("request body exceeds {MAX_BODY} bytes"),
                )
            })?;
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            let code = match e.classify() {
                serde_json::error::Category::Data => ErrorCode::BadSyntax,
                _ => ErrorCode::BadJson,
            };
            bad(code, format!("invalid request body: {e}"))
        })
    }
}

fn name(field: &str, value: Option<&str>) -> Result<Name, ApiError> {
    match value {
        Some(v) => Ok(Name::parse(v)?),
        None => Err(bad(
            ErrorCode::BadSyntax,
            format!("the field '{field}' is required"),
        )),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The REST client `client`'s connection, if the request carries its token (Bearer header first,
/// then the body or query `token` field).
fn authorize(
    state: &RoomsState,
    client: &Name,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<tether_rooms::ConnId, ApiError> {
    Ok(state.authorize(client.as_str(), bearer(headers).or(token))?)
}

fn new_token() -> Result<String, ApiError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| {
        tracing::error!("no randomness for a token: {e}");
        bad(ErrorCode::ServerFull, "cannot create a token right now")
    })?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// `{"status": "ok"}`; with a bus, `degraded` while Redis is unreachable (the node still serves
/// its own members) and the bus's state.
async fn health(State(state): State<Arc<RoomsState>>) -> Response {
    match &state.bus {
        None => Json(json!({"status": "ok"})).into_response(),
        Some(bus) => Json(json!({
            "status": if bus.healthy() { "ok" } else { "degraded" },
            "bus": {"node": bus.node, "pubsub": bus.pubsub_up(), "commands": bus.commands_ok()},
        }))
        .into_response(),
    }
}

async fn status(State(state): State<Arc<RoomsState>>) -> Response {
    let (clients, mut rooms) = state.with_hub(|h| (h.client_count(), h.rooms()));
    if let Some(bus) = &state.bus {
        bus.view().merge_rooms(&mut rooms, true);
    }
    let chat_rooms: Vec<Value> = rooms
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "client_count": r.count,
                "clients": r.members.iter().map(|m| &m.client).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({
        "host": state.tcp_addr.ip().to_string(),
        "port": state.tcp_addr.port(),
        "http": state.http_addr.to_string(),
        "client_count": clients,
        "max_clients": state.config.max_clients,
        "max_message_length": state.config.max_message_length,
        "max_rooms": state.config.max_rooms,
        "use_ssl": state.config.tls.is_some(),
        "chat_rooms": chat_rooms,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct RegisterBody {
    client_name: Option<String>,
    client_id: Option<String>,
    chat_room: Option<String>,
}

async fn register(State(state): State<Arc<RoomsState>>, Body(b): Body<RegisterBody>) -> ApiResult {
    let client = name(
        "client_id",
        b.client_id.as_deref().or(b.client_name.as_deref()),
    )?;
    let room = Name::parse(b.chat_room.as_deref().unwrap_or("main"))?;
    let token = new_token()?;
    let conn = state.open_mailbox(token.clone());
    let cmd = Command::Register {
        kind: Register::Hello,
        room: room.clone(),
        client: Some(client.clone()),
        presence: true,
        since: None,
        offsets: false,
    };
    if let Err(e) = state
        .through_bus(conn, &cmd)
        .await
        .and_then(|()| state.execute_rest(conn, cmd))
    {
        state.close(conn, CloseReason::Closed);
        return Err(e.into());
    }
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"status": "registered", "client_id": client, "chat_room": room, "token": token}),
        ),
    )
        .into_response())
}

#[derive(Deserialize)]
struct RoomBody {
    chat_room: Option<String>,
    client_id: Option<String>,
    token: Option<String>,
}

async fn create_room(
    State(state): State<Arc<RoomsState>>,
    headers: HeaderMap,
    Body(b): Body<RoomBody>,
) -> ApiResult {
    let (room, client) = (
        name("chat_room", b.chat_room.as_deref())?,
        name("client_id", b.client_id.as_deref())?,
    );
    let conn = authorize(&state, &client, &headers, b.token.as_deref())?;
    let cmd = Command::Register {
        kind: Register::New,
        room: room.clone(),
        client: Some(client.clone()),
        presence: true,
        since: None,
        offsets: false,
    };
    state.through_bus(conn, &cmd).await?;
    state.execute_rest(conn, cmd)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"status": "created", "chat_room": room, "created_by": client})),
    )
        .into_response())
}

async fn join_room(
    State(state): State<Arc<RoomsState>>,
    headers: HeaderMap,
    Body(b): Body<RoomBody>,
) -> ApiResult {
    let (room, client) = (
        name("chat_room", b.chat_room.as_deref())?,
        name("client_id", b.client_id.as_deref())?,
    );
    let conn = authorize(&state, &client, &headers, b.token.as_deref())?;
    let cmd = Command::Register {
        kind: Register::Join,
        room: room.clone(),
        client: Some(client.clone()),
        presence: true,
        since: None,
        offsets: false,
    };
    state.through_bus(conn, &cmd).await?;
    let reply = state.execute_rest(conn, cmd)?;
    let clients: Vec<Name> = match reply {
        Reply::Registered { members, .. } => members.into_iter().map(|m| m.client).collect(),
        _ => Vec::new(),
    };
    Ok(Json(
        json!({"status": "joined", "chat_room": room, "client_id": client, "clients": clients}),
    )
    .into_response())
}

#[derive(Deserialize)]
struct SendBody {
    message_data: Option<String>,
    chat_room: Option<String>,
    client_id: Option<String>,
    token: Option<String>,
}

async fn send(
    State(state): State<Arc<RoomsState>>,
    headers: HeaderMap,
    Body(b): Body<SendBody>,
) -> ApiResult {
    let (room, client) = (
        name("chat_room", b.chat_room.as_deref())?,
        name("client_id", b.client_id.as_deref())?,
    );
    let text = b
        .message_data
        .ok_or_else(|| bad(ErrorCode::BadSyntax, "the field 'message_data' is required"))?;
    let conn = authorize(&state, &client, &headers, b.token.as_deref())?;
    let cmd = Command::Send {
        room: room.clone(),
        client: Some(client),
        text,
    };
    let cmd = state.through_hook(conn, Ok(cmd)).await?;
    let text = match cmd.command() {
        Command::Send { text, .. } => text.clone(),
        _ => String::new(),
    };
    let reply = state.execute_rest(conn, cmd)?;
    let (n, offset, epoch) = match reply {
        Reply::Sent {
            delivered,
            position,
            ..
        } => (delivered, position.offset, position.epoch.to_string()),
        _ => (0, 0, String::new()),
    };
    Ok(Json(json!({
        "status": "sent", "message": text, "chat_room": room, "clients_notified": n,
        "offset": offset, "epoch": epoch,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct DirectBody {
    message_data: Option<String>,
    chat_room: Option<String>,
    source_client_id: Option<String>,
    target_client_id: Option<String>,
    token: Option<String>,
}

async fn direct(
    State(state): State<Arc<RoomsState>>,
    headers: HeaderMap,
    Body(b): Body<DirectBody>,
) -> ApiResult {
    let room = name("chat_room", b.chat_room.as_deref())?;
    let source = name("source_client_id", b.source_client_id.as_deref())?;
    let target = name("target_client_id", b.target_client_id.as_deref())?;
    let text = b
        .message_data
        .ok_or_else(|| bad(ErrorCode::BadSyntax, "the field 'message_data' is required"))?;
    let conn = authorize(&state, &source, &headers, b.token.as_deref())?;
    let cmd = Command::To {
        room: room.clone(),
        client: Some(source.clone()),
        target: target.clone(),
        text,
    };
    let cmd = state.through_hook(conn, Ok(cmd)).await?;
    let text = match cmd.command() {
        Command::To { text, .. } => text.clone(),
        _ => String::new(),
    };
    let reply = state.execute_rest(conn, cmd)?;
    let n = match reply {
        Reply::Direct { delivered, .. } => delivered,
        _ => 0,
    };
    Ok(Json(json!({
        "status": "sent", "message": text, "chat_room": room,
        "source_client_id": source, "target_client_id": target, "delivered": n,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    list_type: Option<String>,
    client_id: Option<String>,
    chat_room: Option<String>,
}

async fn list(
    State(state): State<Arc<RoomsState>>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| bad(ErrorCode::BadSyntax, e.body_text()))?;
    let kind = ListType::parse(q.list_type.as_deref().unwrap_or("CHAT_ROOMS"))?;
    let arg = match kind {
        ListType::ClientChatRooms => Some(name("client_id", q.client_id.as_deref())?),
        ListType::ClientsForChatRoom => Some(name("chat_room", q.chat_room.as_deref())?),
        _ => None,
    };
    let mut listing = state.with_hub(|h| h.list(kind, arg.clone()));
    if let Some(bus) = &state.bus {
        listing = bus.view().merge_list(kind, arg.as_ref(), listing);
    }
    let rooms = match listing? {
        Reply::List { rooms, .. } => rooms,
        _ => Vec::new(),
    };
    let names = |r: &RoomInfo| {
        r.members
            .iter()
            .map(|m| m.client.clone())
            .collect::<Vec<_>>()
    };
    let body = match kind {
        ListType::ChatRooms => {
            json!({"chat_rooms": rooms.iter().map(|r| &r.name).collect::<Vec<_>>()})
        }
        ListType::All => {
            let mut m = Map::new();
            for r in &rooms {
                let statuses: Map<String, Value> = r
                    .members
                    .iter()
                    .map(|m| (m.client.to_string(), json!(m.status)))
                    .collect();
                m.insert(
                    r.name.to_string(),
                    json!({"clients": names(r), "client_count": r.count, "statuses": statuses}),
                );
            }
            json!({"chat_rooms": m})
        }
        ListType::ChatRoomAndClients => {
            let m: Map<String, Value> = rooms
                .iter()
                .map(|r| (r.name.to_string(), json!(names(r))))
                .collect();
            json!({"chat_rooms": m})
        }
        ListType::ClientChatRooms => {
            json!({"client_id": arg, "chat_rooms": rooms.iter().map(|r| &r.name).collect::<Vec<_>>()})
        }
        ListType::ClientsForChatRoom => {
            json!({"chat_room": arg, "clients": rooms.first().map(names).unwrap_or_default()})
        }
    };
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
struct ClientBody {
    client_id: Option<String>,
    chat_room: Option<String>,
    token: Option<String>,
}

async fn pause(
    state: State<Arc<RoomsState>>,
    headers: HeaderMap,
    body: Body<ClientBody>,
) -> ApiResult {
    pause_or_resume(state, headers, body, true)
}

async fn resume(
    state: State<Arc<RoomsState>>,
    headers: HeaderMap,
    body: Body<ClientBody>,
) -> ApiResult {
    pause_or_resume(state, headers, body, false)
}

fn pause_or_resume(
    State(state): State<Arc<RoomsState>>,
    headers: HeaderMap,
    Body(b): Body<ClientBody>,
    suspend: bool,
) -> ApiResult {
    let client = name("client_id", b.client_id.as_deref())?;
    let room = b.chat_room.as_deref().map(Name::parse).transpose()?;
    let conn = authorize(&state, &client, &headers, b.token.as_deref())?;
    let cmd = if suspend {
        Command::Pause {
            room: room.clone(),
            client: Some(client.clone()),
        }
    } else {
        Command::Resume {
            room: room.clone(),
            client: Some(client.clone()),
        }
    };
    let rooms = match state.execute_rest(conn, cmd)? {
        Reply::Paused { rooms, .. } | Reply::Resumed { rooms, .. } => rooms,
        _ => Vec::new(),
    };
    let (status, verb) = if suspend {
        ("paused", "paused")
    } else {
        ("resumed", "resumed")
    };
    let message = if rooms.is_empty() {
        format!("Client {client} not found in any chat rooms")
    } else {
        format!(
            "Client {client} {verb} in rooms: {}",
            rooms
                .iter()
                .map(Name::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Ok(
        Json(json!({"status": status, "client_id": client, "chat_room": room, "message": message}))
            .into_response(),
    )
}

async fn close(
    State(state): State<Arc<RoomsState>>,
    headers: HeaderMap,
    Body(b): Body<ClientBody>,
) -> ApiResult {
    let client = name("client_id", b.client_id.as_deref())?;
    let conn = authorize(&state, &client, &headers, b.token.as_deref())?;
    state.execute_rest(
        conn,
        Command::Quit {
            client: Some(client.clone()),
        },
    )?;
    state.close(conn, CloseReason::Closed);
    Ok(Json(json!({"status": "closed", "client_id": client})).into_response())
}

#[derive(Deserialize)]
struct MessagesQuery {
    client_id: Option<String>,
    token: Option<String>,
}

async fn messages(
    State(state): State<Arc<RoomsState>>,
    headers: HeaderMap,
    q: Result<Query<MessagesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| bad(ErrorCode::BadSyntax, e.body_text()))?;
    let client = name("client_id", q.client_id.as_deref())?;
    let conn = authorize(&state, &client, &headers, q.token.as_deref())?;
    let (items, dropped) = state.take_mailbox(conn);
    let messages: Vec<Value> = items
        .iter()
        .map(|p| tether_rooms::json::push_value(p.push()))
        .collect();
    Ok(Json(json!({"messages": messages, "dropped": dropped})).into_response())
}

/// Most messages one history call returns (and its default).
pub const HISTORY_LIMIT_MAX: usize = 1000;
const HISTORY_LIMIT_DEFAULT: usize = 100;

#[derive(Deserialize)]
struct HistoryQuery {
    since: Option<String>,
    epoch: Option<String>,
    limit: Option<String>,
}

/// A room's kept messages: the newest `limit`, or with `since` and `epoch` the ones after that
/// position (oldest first, at most `limit`: ask again from the last offset for more) or
/// `recovered: false` when part of them is gone.
async fn history(
    State(state): State<Arc<RoomsState>>,
    Path(room): Path<String>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| bad(ErrorCode::BadSyntax, e.body_text()))?;
    let room = Name::parse(&room)?;
    let limit = match q.limit.as_deref() {
        None => HISTORY_LIMIT_DEFAULT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=HISTORY_LIMIT_MAX).contains(n))
            .ok_or_else(|| {
                bad(
                    ErrorCode::BadSyntax,
                    format!("limit must be a whole number from 1 to {HISTORY_LIMIT_MAX}"),
                )
            })?,
    };
    let since = match (q.since.as_deref(), q.epoch.as_deref()) {
        (None, None) => None,
        (Some(o), Some(e)) => {
            let offset = o.parse::<u64>().map_err(|_| {
                bad(
                    ErrorCode::BadSyntax,
                    "since must be an offset: a whole number from 0",
                )
            })?;
            Some(Position::parse(offset, e)?)
        }
        _ => {
            return Err(bad(
                ErrorCode::BadSyntax,
                "since and epoch go together: the offset last seen and its epoch",
            ));
        }
    };
    // With a bus, the room's history is Redis's: bring this node's in step first.
    state.sync_room(&room).await;
    let now = std::time::Instant::now();
    let (position, page) =
        state.with_hub(|h| h.history(room.as_str(), since.as_ref(), limit, now))?;
    let mut body = json!({
        "chat_room": room,
        "offset": position.offset,
        "epoch": &*position.epoch,
    });
    let messages: Vec<Value> = match &page {
        Recovery::Recovered(v) => v
            .iter()
            .map(|m| json!({"offset": m.offset, "from": m.from, "text": &*m.text}))
            .collect(),
        Recovery::Resync => Vec::new(),
    };
    if let Value::Object(m) = &mut body {
        if since.is_some() {
            m.insert(
                "recovered".into(),
                Value::Bool(matches!(page, Recovery::Recovered(_))),
            );
        }
        m.insert("messages".into(), Value::Array(messages));
    }
    Ok(Json(body).into_response())
}

async fn delete_room(State(state): State<Arc<RoomsState>>, Path(room): Path<String>) -> ApiResult {
    let room = Name::parse(&room)?;
    state.mutate(|core| core.hub.delete_room(room.as_str()))?;
    if let Some(bus) = &state.bus {
        bus.room_removed(&room);
    }
    Ok(Json(json!({"status": "deleted", "chat_room": room})).into_response())
}
