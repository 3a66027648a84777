//! The WebAssembly exports: a JSON-in/JSON-out wrapper around [`Core`].
//!
//! This module holds every `unsafe` line of the crate. The host allocates
//! an input buffer with `alloc` once and reuses it; `call` reads a request
//! from it without taking ownership and returns the JSON response in a
//! buffer the core owns, valid until the next `call`. One export call per
//! operation keeps the engine's per-call cost low. Each export only decodes,
//! calls a typed method and encodes. `docs/boundary.md` describes the messages.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::{CommandId, HttpResponse, LogLine, Message, Outcome, Step, TransportFailure, UnixMillis};
use crate::{Core, Limits, ABI_VERSION};

/// The core of this module instance. wasm32-unknown-unknown runs one
/// thread, so the locks are never contended; they only make the statics safe.
static CORE: Mutex<Option<Core>> = Mutex::new(None);

/// The last response, kept until the next `call` so that the host can read it.
static OUTPUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Op {
    Configure,
    Start,
    Resume,
    Cancel,
}

/// Every request in one flat shape, parsed in a single pass: an internally
/// tagged enum would buffer the whole request, response bodies included,
/// before parsing it a second time.
#[derive(Deserialize)]
struct Request {
    abi: u32,
    op: Op,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    now_ms: Option<UnixMillis>,
    #[serde(default)]
    sender: Option<String>,
    #[serde(default)]
    room_id: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    command: Option<CommandId>,
    #[serde(default)]
    response: Option<HttpResponse>,
    #[serde(default)]
    failure: Option<TransportFailure>,
}

/// Just the version, to name a mismatch when a request does not parse.
#[derive(Deserialize)]
struct Envelope {
    abi: u32,
}
/// The results of each operation. Typed structs rather than `json!` keep
/// the generic JSON-value serializer, float printing included, out of the module.
#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Configured {
        base_command: String,
        problems: Vec<String>,
        log: Vec<LogLine>,
    },
    Started {
        command: Option<CommandId>,
        step: Step,
    },
    Resumed {
        step: Step,
    },
    Cancelled {},
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Output {
    Ok(Answer),
    Error { kind: &'static str, message: String },
}

#[no_mangle]
pub extern "C" fn abi_version() -> u32 {
    ABI_VERSION
}

/// Allocates `len` bytes for the host. Returns 0 when `len` is 0 or too large.
#[no_mangle]
pub extern "C" fn alloc(len: u32) -> u32 {
    if len == 0 {
        return 0;
    }
    let mut buffer = Vec::<u8>::new();
    if buffer.try_reserve_exact(len as usize).is_err() {
        return 0;
    }
    buffer.resize(len as usize, 0);
    let pointer = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    pointer as u32
}

/// Frees a buffer from `alloc`.
///
/// # Safety
/// `ptr` and `len` must describe a buffer this module handed out and that
/// was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn dealloc(ptr: u32, len: u32) {
    if ptr == 0 || len == 0 {
        return;
    }
    // SAFETY: the caller guarantees that (ptr, len) came from `alloc`, which
    // leaks a Vec<u8> whose length and capacity are `len`.
    drop(unsafe { Vec::from_raw_parts(ptr as *mut u8, len as usize, len as usize) });
}

/// Runs one request read from `len` bytes at `ptr`, and returns
/// `(out_ptr << 32) | out_len` of the JSON response. The input buffer stays
/// the host's; the response stays valid until the next call.
///
/// # Safety
/// `ptr` and `len` must lie within a buffer from `alloc` that is not freed.
#[no_mangle]
pub unsafe extern "C" fn call(ptr: u32, len: u32) -> u64 {
    let input: &[u8] = if ptr == 0 || len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees that (ptr, len) lies within a live
        // buffer from `alloc`, and nothing else touches it during this call.
        unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) }
    };
    let output = handle(input);

    let Ok(mut buffer) = OUTPUT.lock() else {
        return 0;
    };
    buffer.clear();
    if serde_json::to_writer(&mut *buffer, &output).is_err() {
        buffer.clear();
        buffer.extend_from_slice(br#"{"error":{"kind":"internal","message":"the response could not be serialized"}}"#);
    }
    ((buffer.as_ptr() as u64) << 32) | buffer.len() as u64
}

fn failure(kind: &'static str, message: impl std::fmt::Display) -> Output {
    Output::Error {
        kind,
        message: message.to_string(),
    }
}

fn abi_mismatch(version: u32) -> Output {
    failure(
        "abi_mismatch",
        format_args!("the host speaks ABI version {version} but this module speaks {ABI_VERSION}"),
    )
}

fn handle(input: &[u8]) -> Output {
    let request: Request = match serde_json::from_slice(input) {
        Ok(request) => request,
        Err(error) => {
            return match serde_json::from_slice::<Envelope>(input) {
                Ok(envelope) if envelope.abi != ABI_VERSION => abi_mismatch(envelope.abi),
                _ => failure("invalid_request", error),
            };
        }
    };
    if request.abi != ABI_VERSION {
        return abi_mismatch(request.abi);
    }

    let Ok(mut guard) = CORE.lock() else {
        return failure("internal", "the core's state is unavailable");
    };
    let core = guard.get_or_insert_with(Core::new);
    dispatch(core, request)
}

fn missing(op: &str, field: &str) -> Output {
    failure("invalid_request", format_args!("`{op}` needs the field `{field}`"))
}

fn dispatch(core: &mut Core, request: Request) -> Output {
    let result = match request.op {
        Op::Configure => {
            let Some(config) = request.config else {
                return missing("configure", "config");
            };
            core.set_limits(request.limits.unwrap_or_default());
            let configured = core.configure(&config);
            return Output::Ok(Answer::Configured {
                base_command: configured.base_command,
                problems: configured.problems,
                log: configured.log,
            });
        }
        Op::Start => {
            let (Some(now_ms), Some(sender), Some(room_id), Some(body)) =
                (request.now_ms, request.sender, request.room_id, request.body)
            else {
                return missing("start", "now_ms, sender, room_id and body");
            };
            let message = Message { sender, room_id, body, internal: request.internal };
            core.start(now_ms, &message)
                .map(|(command, step)| Answer::Started { command, step })
        }
        Op::Resume => {
            let (Some(command), Some(now_ms)) = (request.command, request.now_ms) else {
                return missing("resume", "command and now_ms");
            };
            let outcome = match (request.response, request.failure) {
                (Some(response), None) => Outcome::Response(response),
                (None, Some(transport)) => Outcome::Failure(transport),
                _ => return failure("invalid_request", "resume needs exactly one of `response` and `failure`"),
            };
            core.resume(command, now_ms, outcome).map(|step| Answer::Resumed { step })
        }
        Op::Cancel => {
            let Some(command) = request.command else {
                return missing("cancel", "command");
            };
            core.cancel(command);
            Ok(Answer::Cancelled {})
        }
    };
    match result {
        Ok(answer) => Output::Ok(answer),
        Err(error) => failure("invalid_request", error),
    }
}
